"""Kiosk devices: which browsers may use the kiosk-only visitor routes (docs/security.md)."""

from __future__ import annotations

from kiosk.features import DashboardCard, Feature, MenuLink
from kiosk.i18n import _l


def feature() -> Feature:
    from kiosk.devices import dashboard, views

    link = MenuLink("devices.devices", _l("Kiosk devices"))
    return Feature(
        name="devices",
        blueprints=(views.staff_bp, views.enrol_bp),
        menu=(link,),
        dashboard=DashboardCard(_l("Kiosk devices"), links=(link,), figures=dashboard.figures),
    )
