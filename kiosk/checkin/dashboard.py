"""Today's check-in figures for the staff dashboard."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.checkin.models import CheckIn, CheckinStatus
from kiosk.checkin.services import running_activities
from kiosk.features import Figure, FigureContext
from kiosk.i18n import _l


def figures(session: Session, context: FigureContext) -> list[Figure]:
    today = context.now.astimezone(context.zone).date()
    checkins = session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.session_date == today, CheckIn.status == CheckinStatus.ACTIVE))
    running = running_activities(session, context.now, context.zone)
    return [
        Figure(_l("Check-ins today"), int(checkins or 0), "activities.activities"),
        Figure(_l("Activities open for check-in now"), len(running), "checkin.index"),
    ]
