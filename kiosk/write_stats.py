"""The write timer, for measuring only (bench/writelock.py): with KIOSK_WRITE_STATS=FILE set in
the environment, kiosk.db.grouped_write times each group under the writer lock (wall and the
leader's thread CPU; connect + BEGIN, the units, the commit) and each unit's whole stay (queue,
lock, commit), and a daemon thread writes the raw figures to FILE once a second. Off (the
default), nothing is timed: grouped_write tests one module attribute.

Kept out of kiosk.db so the write path there reads as what it does; its only hooks there are
grouped_write's two calls and the two marks _run_group leaves (after BEGIN, after the units).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


class WriteStats:
    """The figures so far (see the module's docstring); ``dump`` writes them whole."""

    def __init__(self, path: str, *, background: bool = True) -> None:
        self.path = path
        self.guard = threading.Lock()
        self.groups: list[tuple[int, float, float, float, float, float]] = []  # size, held, held CPU, begin, units, commit
        self.units: list[float] = []  # one unit's work, wall
        self.stays: list[float] = []  # a caller's time in grouped_write, wall
        self.lock_waits: list[float] = []  # a leader's wait for the lock, wall
        if background:
            threading.Thread(target=self._dump_forever, daemon=True, name="kiosk-write-stats").start()

    def dump(self) -> None:
        """The figures so far to the file, whole (written aside, then renamed)."""
        with self.guard:
            data = {"groups": list(self.groups), "units": list(self.units), "stays": list(self.stays), "lock_waits": list(self.lock_waits)}
        with open(self.path + ".tmp", "w") as out:
            json.dump(data, out)
        os.replace(self.path + ".tmp", self.path)

    def _dump_forever(self) -> None:
        written = -1
        while True:
            time.sleep(1.0)
            if len(self.stays) != written:
                written = len(self.stays)
                self.dump()

    def run_group(self, run: Callable[[], None], group: Sequence[Any], queued: float, held: threading.local) -> None:
        """``run()`` (kiosk.db._run_group of ``group``, kiosk.db._Unit's) with its units' work timed one by one,
        and the group's phases from the marks _run_group leaves in ``held.marks``."""
        taken, cpu = time.perf_counter(), time.thread_time()
        works = [unit.work for unit in group]
        spent: list[float] = []

        def timed(work: Callable[[Any], Any]) -> Callable[[Any], Any]:
            def run_unit(connection: Any) -> Any:
                started = time.perf_counter()
                try:
                    return work(connection)
                finally:
                    spent.append(time.perf_counter() - started)

            return run_unit

        for unit in group:
            unit.work = timed(unit.work)
        marks: list[float] = []
        held.marks = marks
        try:
            run()
        finally:
            held.marks = None
            for unit, work in zip(group, works, strict=True):
                unit.work = work
            released = time.perf_counter()
            begun, units_done = (marks + [released, released])[:2]
            with self.guard:
                self.lock_waits.append(taken - queued)
                self.units.extend(spent)
                self.groups.append((len(group), released - taken, time.thread_time() - cpu, begun - taken, units_done - begun, released - units_done))

    def stay(self, queued: float) -> None:
        """A caller's whole time in grouped_write, from ``queued``."""
        with self.guard:
            self.stays.append(time.perf_counter() - queued)


def mark(held: threading.local) -> None:
    """A phase boundary of the group being timed (nothing when the timer is off)."""
    marks = getattr(held, "marks", None)
    if marks is not None:
        marks.append(time.perf_counter())


def from_environment() -> WriteStats | None:
    path = os.environ.get("KIOSK_WRITE_STATS")
    return WriteStats(path) if path else None
