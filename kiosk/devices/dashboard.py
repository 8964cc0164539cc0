"""Kiosk device figures for the staff dashboard."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.devices.models import KioskDevice
from kiosk.features import Figure, FigureContext
from kiosk.i18n import _l


def figures(session: Session, context: FigureContext) -> list[Figure]:
    enrolled = session.scalar(select(func.count()).select_from(KioskDevice).where(KioskDevice.secret_hash.is_not(None), KioskDevice.revoked_at.is_(None)))
    return [Figure(_l("Enrolled kiosks"), int(enrolled or 0), "devices.devices")]
