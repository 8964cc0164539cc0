"""Members (会员): registration at the desk, member cards, search and export."""

from __future__ import annotations

from kiosk.features import DashboardCard, Feature, MenuLink
from kiosk.i18n import _l


def feature() -> Feature:
    from kiosk.members import dashboard, demo, scan, views

    return Feature(
        name="members",
        blueprints=(views.bp,),
        recognisers=(scan.MEMBER_CARD,),
        menu=(MenuLink("members.index", _l("Members")),),
        dashboard=DashboardCard(
            _l("Members"),
            links=(MenuLink("members.index", _l("Members")), MenuLink("members.new", _l("Register a member"))),
            figures=dashboard.figures,
        ),
        demo=demo.load,
        event_types=("member.registered",),
    )
