"""glibc's allocator in the long-running `kiosk serve` process (issue 14, the soak).

Measured with the soak's memory probe (bench/soak.py --probe, kiosk.ops.memprobe): over the
soak, what the process *uses* stays flat (Python objects, glibc's chunks in use, SQLite's own
heap and page cache), while the free memory glibc keeps in its arenas grows by about 2 MiB a
minute, and the resident size with it. Each waitress thread gets an arena of its own (up to
8 per core), and freed chunks inside an arena are not given back to the kernel: only the top
of a heap is trimmed, and only when a free reaches it.

`kiosk serve` therefore (glibc only; elsewhere nothing is done):
- caps the number of arenas (``mallopt(M_ARENA_MAX)``, MALLOC_ARENA_MAX, default 2) before the
  worker threads start, so the free memory is not kept apart in one arena per thread;
- every MALLOC_TRIM_SECONDS (default 30; 0 = never) calls ``malloc_trim(0)`` from a daemon
  thread, which hands the free pages inside every arena back to the kernel (madvise), not just
  the top. It takes a few milliseconds on the kiosk's heap and holds each arena's lock only
  while it walks that arena.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from typing import Any

log = logging.getLogger("kiosk.ops.allocator")

M_ARENA_MAX = -8  # glibc's malloc.h


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None  # not glibc (musl, macOS)
    return libc


def trim() -> bool:
    """Give the free pages of every arena back to the kernel; False without glibc."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


class Trimmer:
    """The daemon thread that trims every ``every`` seconds; stop() ends it."""

    def __init__(self, every: float):
        self.every = every
        self.trims = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="kiosk-malloc-trim", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if trim():
                self.trims += 1

    def stop(self) -> None:
        self._stop.set()


def tune(config: Any) -> Trimmer | None:
    """Apply MALLOC_ARENA_MAX and start the trimmer (see the module's docstring); the trimmer,
    or None when there is none (not glibc, or MALLOC_TRIM_SECONDS is 0)."""
    libc = _libc()
    if libc is None:
        return None
    arenas = int(config.get("MALLOC_ARENA_MAX") or 0)
    if arenas > 0 and libc.mallopt(M_ARENA_MAX, arenas) != 1:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused", arenas)
    every = float(config.get("MALLOC_TRIM_SECONDS") or 0)
    if every <= 0:
        return None
    trimmer = Trimmer(every)
    trimmer.thread.start()
    return trimmer
