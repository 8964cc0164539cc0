"""The visitor's availability view (day strip + the chosen day's slots), rendered once and
reused until something could have changed it (bench/booking.py: p95 ≤ 50 ms at 20 clients).

An entry is dropped:
- when this process commits anything (any write: a booking, a cancellation, a schedule edit,
  a call at the desk; writes are rare next to taps, so no finer tracking);
- when another connection has committed to the database file: another server process on the
  same file, `kiosk` commands, sync. SQLite's ``PRAGMA data_version`` changes on a connection
  whenever *another* connection commits; each pooled connection keeps the value it last saw,
  and the first request to see it differ drops everything (a connection never seen before
  counts as a change). Commits of the connection itself are the previous rule's;
- at the first moment its content would change by the clock alone: the next slot whose lead
  time runs out, or local midnight (today / tomorrow labels, the strip's first day);
- on any database other than SQLite there is no cache (the hub does not book).

Entries are plain strings and tuples, safe to share between waitress's threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

_SEEN = "kiosk_booking_data_version"
MAX_ENTRIES = 256


@dataclass(frozen=True)
class _Entry:
    generation: int
    computed_at: datetime  # UTC; valid from then until valid_until
    valid_until: datetime
    value: Any


class AvailabilityCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._entries: dict[tuple, _Entry] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def generation(self, session: Session) -> int | None:
        """The generation to read and store under after looking for other connections'
        commits, or None when this database cannot be watched (no caching)."""
        connection = session.connection()
        if connection.dialect.name != "sqlite":
            return None
        version = connection.exec_driver_sql("PRAGMA data_version").scalar()
        if connection.info.get(_SEEN) != version:
            connection.info[_SEEN] = version
            self.invalidate()
        return self._generation

    def get(self, key: tuple, generation: int | None, now: datetime) -> Any:
        if generation is None:
            return None
        entry = self._entries.get(key)
        if entry is None or entry.generation != generation or not entry.computed_at <= now < entry.valid_until:
            return None
        return entry.value

    def put(self, key: tuple, generation: int | None, computed_at: datetime, valid_until: datetime, value: Any) -> None:
        if generation is None:
            return
        with self._lock:
            if generation != self._generation:
                return  # something was committed while this was being read
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = _Entry(generation, computed_at, valid_until, value)


availability_cache = AvailabilityCache()


@event.listens_for(Session, "after_commit")
def _after_commit(_session: Session) -> None:
    availability_cache.invalidate()
