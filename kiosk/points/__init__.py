"""Points (积分) and rewards: the ledger, 我的积分 at the kiosk, redemption at kiosk and desk."""

from __future__ import annotations

from kiosk.features import DashboardCard, Feature, HomeTile, MenuLink
from kiosk.i18n import _l


def feature() -> Feature:
    from kiosk.points import dashboard, demo, views

    return Feature(
        name="points",
        blueprints=(views.bp, views.staff_bp),
        menu=(MenuLink("rewards.redemptions", _l("Redemptions")),),
        dashboard=DashboardCard(
            _l("Points and rewards"),
            links=(MenuLink("rewards.redemptions", _l("Redemptions waiting at the desk")), MenuLink("rewards.rewards", _l("Rewards"))),
            figures=dashboard.figures,
        ),
        tile=HomeTile("points.index", _l("My points"), _l("Balance and rewards"), "purple"),
        demo=demo.load,
        event_types=("points.corrected", "points.redeemed", "points.redemption_cancelled"),
    )
