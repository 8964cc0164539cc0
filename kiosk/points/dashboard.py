"""Redemption figures for the staff dashboard."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.features import Figure, FigureContext
from kiosk.i18n import _l
from kiosk.points.models import Redemption, RedemptionStatus


def figures(session: Session, context: FigureContext) -> list[Figure]:
    waiting = session.scalar(select(func.count()).select_from(Redemption).where(Redemption.status == RedemptionStatus.PENDING))
    return [Figure(_l("Redemptions waiting for hand-over"), int(waiting or 0), "rewards.redemptions")]
