"""Home screen content.

The notices on the home screen are read on every tap of 返回首页 but change a few times a week,
so current_notices() answers from an in-process cache (DESIGN.md §11: no database round trip per
tap). The cache is dropped:
- when a notice is written through upsert_notice() (staff, demo, and the sync pull, which must
  call it or invalidate_notices()): once at the write and again when that session commits or
  rolls back, so a reader never keeps what another thread read before the commit;
- when a shown notice expires or a scheduled one is published (the entry knows when);
- after NOTICES_MAX_AGE at the latest, for writes from another process (a `kiosk` command run
  by cron) that this process cannot hear about.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic

from sqlalchemy import event, func, or_, select
from sqlalchemy.orm import Session

from kiosk.db import utcnow
from kiosk.home.models import Notice

NOTICES_MAX_AGE = timedelta(seconds=60)
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
    stored_at: float  # time.monotonic()


class _NoticeCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        # One entry per database (engine) and limit; tests run many databases in one process.
        self._entries: weakref.WeakKeyDictionary[object, dict[int, _Entry]] = weakref.WeakKeyDictionary()

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def get(self, bind: object, limit: int, now: datetime) -> _Entry | None:
        entry = self._entries.get(bind, {}).get(limit)
        if entry is None or entry.generation != self._generation or now >= entry.valid_until:
            return None
        if monotonic() - entry.stored_at >= NOTICES_MAX_AGE.total_seconds():
            return None
        return entry

    @property
    def generation(self) -> int:
        return self._generation

    def put(self, bind: object, limit: int, entry: _Entry) -> None:
        with self._lock:
            # A write committed while this was being read: the answer may be stale, keep it out.
            if entry.generation == self._generation:
                self._entries.setdefault(bind, {})[limit] = entry


_cache = _NoticeCache()


def invalidate_notices(session: Session | None = None) -> None:
    """Drop the cached notices now and, given the writing session, again when it ends its
    transaction (commit or rollback)."""
    _cache.invalidate()
    if session is not None:
        session.info[_PENDING] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _invalidate_after_write(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        _cache.invalidate()


def current_notices(session: Session, now: datetime | None = None, limit: int = 4) -> list[ShownNotice]:
    clock = now is None
    now = now or utcnow()
    bind = session.get_bind()
    if clock and not session.info.get(_PENDING):
        entry = _cache.get(bind, limit, now)
        if entry is not None:
            return list(entry.notices)
    generation = _cache.generation
    query = (
        select(Notice)
        .where(Notice.published_at <= now, or_(Notice.expires_at.is_(None), Notice.expires_at > now))
        .order_by(Notice.published_at.desc())
        .limit(limit)
    )
    rows = list(session.scalars(query))
    notices = tuple(ShownNotice(n.key, n.source, n.title, n.body, n.published_at, n.expires_at) for n in rows)
    if clock and not session.info.get(_PENDING):
        # The list changes by itself when a shown notice expires or a scheduled one starts.
        next_start = session.scalar(
            select(func.min(Notice.published_at)).where(Notice.published_at > now, or_(Notice.expires_at.is_(None), Notice.expires_at > now))
        )
        changes = [n.expires_at for n in notices if n.expires_at is not None] + ([next_start] if next_start is not None else [])
        valid_until = min(changes, default=now + NOTICES_MAX_AGE)
        _cache.put(bind, limit, _Entry(generation, notices, valid_until, monotonic()))
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
