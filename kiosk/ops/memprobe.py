"""A memory probe for the soak benchmark (bench/soak.py --probe), off unless asked for.

`kiosk serve` installs it only when MEMORY_PROBE_DIR is set (``KIOSK_MEMORY_PROBE_DIR``; empty
by default, and nothing is installed then: no tracemalloc, no signal handler, no route). When
set, Python's allocations are traced from the start (tracemalloc, MEMORY_PROBE_FRAMES frames;
0: no tracing, the figures only) and each SIGUSR1 writes into that directory, numbered from 1:

- ``probe-N.json``: the process's memory as the kernel sees it (``/proc/self/smaps_rollup``:
  anonymous, file-backed and shared pages), SQLite's own heap (``sqlite3_memory_used`` and its
  page cache, ``SQLITE_STATUS_PAGECACHE_OVERFLOW``: memory Python's tracer cannot see), glibc's
  arenas (``mallinfo2``: in use against held but free), what tracemalloc traces, the garbage
  collector's counts, the connection pool's state and the sizes of the in-process caches;
- ``probe-N.tracemalloc``: the tracemalloc snapshot (when tracing), for the bench to diff.

Tracing slows every allocation: at 4 frames the soak's server answers about a third as many
requests; the figures alone cost nothing until the signal.

Nothing here is reachable over HTTP; the bench sends the signal to the server's pid.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
import tracemalloc
from pathlib import Path
from typing import Any

from flask import Flask

CONFIG_KEY = "MEMORY_PROBE_DIR"
FRAMES_KEY = "MEMORY_PROBE_FRAMES"
SQLITE_STATUS_PAGECACHE_OVERFLOW = 2


def enabled(config: Any) -> bool:
    return bool(str(config.get(CONFIG_KEY) or "").strip())


def install(app: Flask) -> bool:
    """Start tracing and listen for SIGUSR1 when MEMORY_PROBE_DIR is set; False (and nothing
    done) otherwise."""
    if not enabled(app.config):
        return False
    folder = Path(str(app.config[CONFIG_KEY])).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    frames = int(app.config.get(FRAMES_KEY) or 0)
    if frames > 0:
        tracemalloc.start(frames)
    count = [0]
    lock = threading.Lock()

    def on_signal(_signum: int, _frame: Any) -> None:
        with lock:
            count[0] += 1
            number = count[0]
        # The handler runs on the main thread between two of waitress's select() calls; the
        # writing goes to a thread so the server keeps answering.
        threading.Thread(target=write_probe, args=(app, folder, number), daemon=True).start()

    signal.signal(signal.SIGUSR1, on_signal)
    return True


def write_probe(app: Flask, folder: Path, number: int) -> None:
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(folder / f"probe-{number}.tracemalloc"))
    try:
        figures = measure(app)
    except Exception:  # noqa: BLE001 -- a probe thread dies silently: leave the reason where the bench looks
        figures = {"error": traceback.format_exc()}
    (folder / f"probe-{number}.json.part").write_text(json.dumps(figures, indent=1))
    os.replace(folder / f"probe-{number}.json.part", folder / f"probe-{number}.json")


def _sqlite() -> ctypes.CDLL | None:
    """The SQLite library the sqlite3 module is linked against (the same copy: its counters are
    this process's)."""
    import _sqlite3

    try:
        return ctypes.CDLL(_sqlite3.__file__)  # statically linked builds export the API themselves
    except OSError:
        return None


def sqlite_memory() -> dict[str, int]:
    figures: dict[str, int] = {}
    for library in (_sqlite(), _load(ctypes.util.find_library("sqlite3"))):
        if library is None or not hasattr(library, "sqlite3_memory_used"):
            continue
        library.sqlite3_memory_used.restype = ctypes.c_int64
        figures["memory_used"] = int(library.sqlite3_memory_used())
        current, highwater = ctypes.c_int64(), ctypes.c_int64()
        library.sqlite3_status64(SQLITE_STATUS_PAGECACHE_OVERFLOW, ctypes.byref(current), ctypes.byref(highwater), 0)
        figures["page_cache"] = int(current.value)
        break
    return figures


def _load(name: str | None) -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def glibc_heap() -> dict[str, int]:
    """glibc's heap: bytes in its arenas, in use and free but held, and how many arenas there
    are (``malloc_info``'s ``<heap nr=...>`` elements: the main arena and one per thread
    arena, kiosk.ops.allocator caps them)."""
    libc = _load(ctypes.util.find_library("c"))
    if libc is None or not hasattr(libc, "mallinfo2"):
        return {}
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    figures = {"arena": info.arena, "mmapped": info.hblkhd, "in_use": info.uordblks, "free_held": info.fordblks}
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "malloc_info.xml")
        stream = libc.fopen(path.encode(), b"w")
        if stream:
            libc.malloc_info(0, stream)
            libc.fclose(stream)
            figures["arenas"] = Path(path).read_text().count("<heap nr=")
    return figures


def kernel_memory() -> dict[str, int]:
    figures: dict[str, int] = {}
    try:
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in {"Rss", "Anonymous", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty"}:
                figures[name] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return figures


def anonymous_mappings() -> dict[str, int]:
    """Resident bytes of the process's anonymous mappings by what they most likely are: glibc's
    main heap ([heap]), glibc's thread arenas (64 MiB reservations), Python's small-object
    arenas (1 MiB, obmalloc), thread stacks (8 MiB) and the rest (large mallocs, libraries)."""
    groups = {"heap": 0, "thread_arenas": 0, "pymalloc_arenas": 0, "stacks": 0, "other": 0}
    try:
        text = Path("/proc/self/smaps").read_text()
    except OSError:
        return {}
    size = rss = 0
    kind = ""
    for line in text.splitlines() + ["00000000-00000000 end"]:
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            if kind:
                groups[kind] += rss
            start, _, end = head[0].partition("-")
            size, rss = int(end, 16) - int(start, 16), 0
            path = head[5] if len(head) > 5 else ""
            kind = ""
            if path == "[heap]":
                kind = "heap"
            elif not path:
                kind = (
                    "thread_arenas"
                    if size in {64 << 20, 128 << 20} or (size < 64 << 20 and (int(start, 16) % (64 << 20)) == 0)
                    else "pymalloc_arenas"
                    if size == 1 << 20
                    else "stacks"
                    if size in {8 << 20, (8 << 20) + 4096}
                    else "other"
                )
        elif head and head[0] == "Rss:":
            rss = int(head[1]) * 1024
    return groups


def in_process_caches() -> dict[str, int]:
    """Entries held by the process's caches (the ones that grow with traffic)."""
    sizes: dict[str, int] = {}
    modules = sys.modules
    if "kiosk.sync.protocol" in modules:
        sizes["seal_lru"] = modules["kiosk.sync.protocol"].cached_seals()
    if "kiosk.catalogue.search" in modules:
        sizes["catalogue_counts"] = modules["kiosk.catalogue.search"].cached_counts()
    if "kiosk.catalogue.text" in modules:
        sizes["catalogue_fold_lru"] = sum(f.cache_info().currsize for f in vars(modules["kiosk.catalogue.text"]).values() if hasattr(f, "cache_info"))
    if "kiosk.booking.cache" in modules:
        sizes["availability"] = len(modules["kiosk.booking.cache"].availability_cache)
    if "kiosk.devices.access" in modules:
        sizes["devices"] = modules["kiosk.devices.access"].kept_devices()
    return sizes


def measure(app: Flask) -> dict[str, Any]:
    from kiosk.extensions import db
    from kiosk.limits import windows

    traced, traced_peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
    with app.app_context():
        pool = db.engine.pool
        pool_state = {"status": pool.status()}
        for name in ("size", "checkedin", "checkedout", "overflow"):
            method = getattr(pool, name, None)
            if callable(method):
                pool_state[name] = method()
    return {
        "kernel": kernel_memory(),
        "anonymous": anonymous_mappings(),
        "sqlite": sqlite_memory(),
        "glibc": glibc_heap(),
        "tracemalloc": {"current": traced, "peak": traced_peak},
        "gc": {"objects": len(gc.get_objects()), "counts": list(gc.get_count())},
        "pool": pool_state,
        "caches": in_process_caches() | {"rate_limit_windows": len(windows(app))},
        "threads": sorted(thread.name for thread in threading.enumerate()),
    }
