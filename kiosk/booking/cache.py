"""The visitor's availability view (day strip + the chosen day's slots), rendered once and
reused until something could have changed it (bench/booking.py: p95 ≤ 50 ms at 20 clients).

An entry is dropped when the commit generation moves on (kiosk.cache: any commit in this
process, or another connection's commit seen through ``PRAGMA data_version``), and at the
first moment its content would change by the clock alone: the next slot whose lead time runs
out, or local midnight (today / tomorrow labels, the strip's first day). On any database other
than SQLite there is no cache (the hub does not book).

Entries are plain strings and tuples, safe to share between waitress's threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, scoped_session

from kiosk.cache import commit_generation

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
        self._entries: dict[tuple, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def invalidate(self) -> None:
        commit_generation.bump()
        with self._lock:
            self._entries.clear()

    def generation(self, session: Session | scoped_session[Session]) -> int | None:
        """The generation to read and store under (kiosk.cache), or None: no caching."""
        return commit_generation.check(session)

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
            if generation != commit_generation.value:
                return  # something was committed while this was being read
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = _Entry(generation, computed_at, valid_until, value)


availability_cache = AvailabilityCache()
