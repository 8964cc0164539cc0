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
import time
from collections.abc import Callable
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
    stored_at: float  # time.monotonic() when put: was it computed while a reader waited?


class AvailabilityCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple, _Entry] = {}
        self._computing: dict[tuple, threading.Lock] = {}
        # The last value computed for a key under each generation, kept whether or not it
        # could be stored (get_or_compute: readers that waited under the same generation).
        self._computed: dict[tuple[tuple, int], _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def invalidate(self) -> None:
        commit_generation.bump()
        with self._lock:
            self._entries.clear()
            self._computed.clear()

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
            self._entries[key] = _Entry(generation, computed_at, valid_until, value, time.monotonic())

    def get_or_compute(self, key: tuple, generation: int | None, now: datetime, compute: Callable[[], tuple[datetime, Any]]) -> Any:
        """The kept value for ``key``, or ``compute()``'s (it returns the moment the value stops
        being valid, as read at ``now``, and the value), kept for the next reader.

        One thread computes a missing entry; the others asking for the same key meanwhile wait
        for it rather than each recomputing (a commit used to send every busy thread serving
        the availability page into the month's computation at once: issue 11, part 8b).

        A waiting reader takes what was computed under its own generation while it waited,
        even when that could not be stored (the generation moved on since: a commit, or a
        connection new to the pool) and even when it was computed at a later ``now`` than
        its own: the same generation means no commit came between the two checks, so the
        value read after the other check is what this reader would have read, or a state
        from while its request was running. (The plain ``get`` refuses an entry from after
        ``now``: a clock stepped back.) So the month is computed once per generation among
        the readers, not once per reader of an older one."""
        value = self.get(key, generation, now)
        if value is not None:
            return value
        if generation is None:  # nothing is kept (not SQLite): nothing to wait for
            return compute()[1]
        waiting_since = time.monotonic()
        with self._computing_lock(key):
            done = self._computed.get((key, generation))
            if done is not None and now < done.valid_until and (done.computed_at <= now or done.stored_at >= waiting_since):
                return done.value
            valid_until, value = compute()
            self.put(key, generation, now, valid_until, value)
            with self._lock:
                if len(self._computed) >= MAX_ENTRIES:
                    self._computed.clear()
                self._computed[(key, generation)] = _Entry(generation, now, valid_until, value, time.monotonic())
            return value

    def _computing_lock(self, key: tuple) -> threading.Lock:
        """The lock held while ``key``'s entry is computed (one per key, made on first use)."""
        with self._lock:
            lock = self._computing.get(key)
            if lock is None:
                if len(self._computing) >= MAX_ENTRIES:
                    self._computing.clear()  # a key then gets a new lock: at worst two threads compute it
                lock = self._computing[key] = threading.Lock()
            return lock


availability_cache = AvailabilityCache()
