"""Booking free services (服务预约): 理发, 缝补, 法律咨询 … booked at the kiosk, run by the desk."""

from __future__ import annotations

from kiosk.features import DashboardCard, Feature, HomeTile, MenuLink
from kiosk.i18n import _l


def feature() -> Feature:
    from kiosk.booking import dashboard, demo, scan, views

    return Feature(
        name="booking",
        blueprints=(views.bp, views.staff_bp),
        recognisers=(scan.CARD_FOR_BOOKING, scan.TICKET),
        menu=(MenuLink("bookings.queue", _l("Queue")), MenuLink("bookings.services", _l("Services"))),
        dashboard=DashboardCard(
            _l("Service booking"),
            links=(
                MenuLink("bookings.queue", _l("Today's queue")),
                MenuLink("bookings.services", _l("Services and schedules")),
                MenuLink("bookings.month", _l("Month view")),
                MenuLink("bookings.hours", _l("Volunteer hours")),
                MenuLink("bookings.display", _l("Call display (second screen)")),
            ),
            figures=dashboard.figures,
        ),
        tile=HomeTile("booking.index", _l("Book a service"), _l("Haircut, mending, legal advice…"), "green"),
        demo=demo.load,
        event_types=("booking.created", "booking.cancelled", "booking.served", "booking.no_show", "booking.waitlisted"),
        setup=views.setup,
    )
