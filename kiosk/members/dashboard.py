"""Member figures for the staff dashboard."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.features import Figure, FigureContext
from kiosk.i18n import _l
from kiosk.members.models import Member


def figures(session: Session, context: FigureContext) -> list[Figure]:
    local_midnight = datetime.combine(context.now.astimezone(context.zone).date(), time(0), tzinfo=context.zone)
    active = session.scalar(select(func.count()).select_from(Member).where(Member.active.is_(True)))
    today = session.scalar(select(func.count()).select_from(Member).where(Member.created_at >= local_midnight))
    return [
        Figure(_l("Members"), int(active or 0), "members.index"),
        Figure(_l("Registered today"), int(today or 0), "members.index"),
    ]
