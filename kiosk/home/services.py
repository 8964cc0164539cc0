"""Home screen content.

The notices on the home screen are read on every tap of 返回首页 but change a few times a week,
so current_notices() answers from an in-process cache (DESIGN.md §11: no database round trip per
tap), tagged with kiosk.cache's commit generation like the process's other caches. An entry
is used only while:
- the generation is the one it was read under: any commit in this process (staff, demo, the
  sync pull) or by another connection or process (a `kiosk` command run by cron) moves it on;
- the clock has not reached the next time the list changes by itself (a shown notice
  expires, a scheduled one is published).
A session holding an unwritten notice change (upsert_notice before its commit) reads the table
and keeps nothing: it sees its own change, nobody else does.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import event, func, or_, select
from sqlalchemy.orm import Session

from kiosk.cache import commit_generation
from kiosk.db import utcnow
from kiosk.home.models import Notice

# How long an entry with no expiry or scheduled notice in sight is kept by the clock alone
# (the commit generation drops it at any change before that).
NOTICES_VALID_FOR = timedelta(hours=1)
_PENDING = "kiosk_notices_changed"


@dataclass(frozen=True)
class ShownNotice:
    """A notice as the home screen shows it: plain data, safe to share between requests."""

    key: str
    source: str
    title: str
    body: str
    published_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class _Entry:
    generation: int
    notices: tuple[ShownNotice, ...]
    valid_until: datetime  # UTC: the next time the answer can change by the clock alone


_lock = threading.Lock()
# One entry per database (engine) and limit; tests run many databases in one process.
_entries: weakref.WeakKeyDictionary[object, dict[int, _Entry]] = weakref.WeakKeyDictionary()


def invalidate_notices(session: Session | None = None) -> None:
    """Drop the cached notices now; given the writing session, also bypass the cache in it until
    it ends its transaction (its commit moves the generation on)."""
    with _lock:
        _entries.clear()
    if session is not None:
        session.info[_PENDING] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _end_of_transaction(session: Session) -> None:
    session.info.pop(_PENDING, None)


def current_notices(session: Session, now: datetime | None = None, limit: int = 4) -> list[ShownNotice]:
    clock = now is None
    now = now or utcnow()
    generation = commit_generation.check(session) if clock and not session.info.get(_PENDING) else None
    bind = session.get_bind()
    if generation is not None:
        entry = _entries.get(bind, {}).get(limit)
        if entry is not None and entry.generation == generation and now < entry.valid_until:
            return list(entry.notices)
    query = (
        select(Notice)
        .where(Notice.published_at <= now, or_(Notice.expires_at.is_(None), Notice.expires_at > now))
        .order_by(Notice.published_at.desc())
        .limit(limit)
    )
    rows = list(session.scalars(query))
    notices = tuple(ShownNotice(n.key, n.source, n.title, n.body, n.published_at, n.expires_at) for n in rows)
    if generation is not None and not session.info.get(_PENDING):
        # The list changes by itself when a shown notice expires or a scheduled one starts.
        next_start = session.scalar(
            select(func.min(Notice.published_at)).where(Notice.published_at > now, or_(Notice.expires_at.is_(None), Notice.expires_at > now))
        )
        changes = [n.expires_at for n in notices if n.expires_at is not None] + ([next_start] if next_start is not None else [])
        valid_until = min(changes, default=now + NOTICES_VALID_FOR)
        with _lock:
            # A commit landed while this was being read: the answer may be stale, keep it out.
            if generation == commit_generation.value:
                _entries.setdefault(bind, {})[limit] = _Entry(generation, notices, valid_until)
    return list(notices)


def upsert_notice(session: Session, *, key: str, source: str, title: str, body: str, published_at: datetime, expires_at: datetime | None = None) -> Notice:
    notice = session.scalar(select(Notice).where(Notice.key == key))
    if notice is None:
        notice = Notice(key=key)
        session.add(notice)
    notice.source, notice.title, notice.body = source, title, body
    notice.published_at, notice.expires_at = published_at, expires_at
    session.flush()
    invalidate_notices(session)
    return notice
