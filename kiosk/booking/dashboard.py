"""Today's booking figures for the staff dashboard."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kiosk.booking.services import today_figures
from kiosk.features import Figure, FigureContext
from kiosk.i18n import _l


def figures(session: Session, context: FigureContext) -> list[Figure]:
    counts = today_figures(session, context.now.astimezone(context.zone).date())
    return [
        # What today_figures counts: every ticket not cancelled (walk-ins too), every one not yet
        # served (those being called too).
        Figure(_l("Tickets today"), counts["booked"], "bookings.queue"),
        Figure(_l("Not yet served"), counts["waiting"], "bookings.queue"),
        Figure(_l("Served today"), counts["served"], "bookings.queue"),
    ]
