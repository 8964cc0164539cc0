"""Home screen content."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kiosk.db import utcnow
from kiosk.home.models import Notice


def current_notices(session: Session, now: datetime | None = None, limit: int = 4) -> list[Notice]:
    now = now or utcnow()
    query = (
        select(Notice)
        .where(Notice.published_at <= now, or_(Notice.expires_at.is_(None), Notice.expires_at > now))
        .order_by(Notice.published_at.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def upsert_notice(session: Session, *, key: str, source: str, title: str, body: str, published_at: datetime, expires_at: datetime | None = None) -> Notice:
    notice = session.scalar(select(Notice).where(Notice.key == key))
    if notice is None:
        notice = Notice(key=key)
        session.add(notice)
    notice.source, notice.title, notice.body = source, title, body
    notice.published_at, notice.expires_at = published_at, expires_at
    session.flush()
    return notice
