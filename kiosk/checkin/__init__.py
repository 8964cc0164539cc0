"""Activity check-in (活动签到): activities, QR codes, the kiosk's check-in screen, phone pages."""

from __future__ import annotations

from kiosk.features import DashboardCard, Feature, HomeTile, MenuLink
from kiosk.i18n import _l


def feature() -> Feature:
    from kiosk.checkin import dashboard, demo, scan, views

    return Feature(
        name="checkin",
        blueprints=(views.bp, views.phone_bp, views.staff_bp),
        recognisers=(scan.CARD_FOR_CHECKIN, scan.CHECKIN_CODE),
        menu=(MenuLink("activities.activities", _l("Activities")),),
        dashboard=DashboardCard(
            _l("Activity check-in"),
            links=(
                MenuLink("activities.activities", _l("Activities")),
                MenuLink("activities.new", _l("New activity")),
                MenuLink("activities.stats", _l("Monthly statistics")),
            ),
            figures=dashboard.figures,
        ),
        tile=HomeTile("checkin.index", _l("Activity check-in"), _l("Scan to check in and earn points"), "red"),
        demo=demo.load,
        event_types=("checkin.created", "checkin.undone"),
    )
