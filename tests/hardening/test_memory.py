"""The long-running server's memory (issue 14, the soak): glibc's arenas capped and their free
pages given back (kiosk.ops.allocator), and the soak's memory probe off unless asked for
(kiosk.ops.memprobe)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path

import pytest

from kiosk.extensions import db
from kiosk.ops import memprobe
from tests.hardening.kiosk_process import KioskProcess, seeded_instance
from tests.helpers import make_app


def caught_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigCgt")


def busy(url: str, clients: int = 24, rounds: int = 5) -> None:
    """Requests from many clients at once, so every worker thread of the server serves some."""

    def client() -> None:
        for _ in range(rounds):
            urllib.request.urlopen(url + "/healthz", timeout=30).read()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def probe(server: KioskProcess, folder: Path, number: int) -> dict:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGUSR1)
    path = folder / f"probe-{number}.json"
    deadline = time.monotonic() + 60  # a wait for the file, not a measured time
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return json.loads(path.read_text())


@pytest.fixture
def instance(tmp_path, migrated_database):
    seeded_instance(tmp_path / "instance", migrated_database, lambda session: None)
    return tmp_path / "instance"


def test_serve_caps_glibc_arenas_and_runs_the_trimmer(instance, tmp_path):
    """8 worker threads each used to get an arena of their own, its free memory kept apart:
    the soak's resident size grew 2 MiB a minute with the memory in use flat. With the default
    MALLOC_ARENA_MAX (2) there are at most 2, and the trimming thread runs."""
    folder = tmp_path / "probe"
    server = KioskProcess(instance, MEMORY_PROBE_DIR=str(folder), MEMORY_PROBE_FRAMES="0").start()
    try:
        busy(server.url)
        figures = probe(server, folder, 1)
    finally:
        server.stop()
    assert 1 <= figures["glibc"]["arenas"] <= 2
    assert "kiosk-malloc-trim" in figures["threads"]
    assert figures["tracemalloc"]["current"] == 0  # frames 0: the figures only


def test_without_the_cap_each_worker_thread_gets_an_arena(instance, tmp_path):
    """What the cap prevents (and that the probe sees it): MALLOC_ARENA_MAX=0 is glibc's default."""
    folder = tmp_path / "probe"
    server = KioskProcess(instance, MEMORY_PROBE_DIR=str(folder), MEMORY_PROBE_FRAMES="0", MALLOC_ARENA_MAX="0", MALLOC_TRIM_SECONDS="0").start()
    try:
        busy(server.url)
        figures = probe(server, folder, 1)
    finally:
        server.stop()
    assert figures["glibc"]["arenas"] > 2
    assert "kiosk-malloc-trim" not in figures["threads"]


TRIM_SCRIPT = (
    """
import ctypes, ctypes.util, sys
from pathlib import Path
from kiosk.ops import allocator

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
blocks = [libc.malloc(4096) for _ in range(20000)]  # 80 MiB of small chunks in the main heap
for block in blocks:
    libc.memset(block, 1, 4096)
keep = libc.malloc(4096)  # above them: the freed space is not the heap's top
before = rss()
for block in blocks:
    libc.free(block)
freed = rss()
"""
    + """
if sys.argv[1] == "trim":
    allocator.trim()
print(before, freed, rss())
"""
)


@pytest.mark.parametrize("trim", [True, False])
def test_trim_gives_the_free_pages_inside_the_heap_back(trim):
    """Freed chunks below the heap's top stay resident until malloc_trim(0); the trimmer's
    call hands them back. Without it (trim=False) the freed 80 MiB stay resident."""
    done = subprocess.run([sys.executable, "-c", TRIM_SCRIPT, "trim" if trim else "no"], capture_output=True, text=True, check=True)
    before, freed, after = map(int, done.stdout.split())
    assert freed > before - 20  # free() alone gives (almost) nothing back
    if trim:
        assert after < freed - 60
    else:
        assert after > freed - 20


def test_the_probe_is_off_by_default(instance, tmp_path):
    """No tracing, no SIGUSR1 handler, no folder, in the app and in a served process."""
    app = make_app(instance)
    assert not memprobe.enabled(app.config)
    before = signal.getsignal(signal.SIGUSR1)
    assert memprobe.install(app) is False
    assert signal.getsignal(signal.SIGUSR1) is before
    assert not tracemalloc.is_tracing()
    server = KioskProcess(instance).start()
    try:
        assert server.process is not None
        assert not caught_signals(server.process.pid) & (1 << (signal.SIGUSR1 - 1))
    finally:
        server.stop()
    assert not list(instance.glob("probe*"))


def test_the_probe_when_asked_writes_its_figures(instance, tmp_path):
    folder = tmp_path / "probe"
    server = KioskProcess(instance, MEMORY_PROBE_DIR=str(folder), MEMORY_PROBE_FRAMES="2").start()
    try:
        assert server.process is not None
        assert caught_signals(server.process.pid) & (1 << (signal.SIGUSR1 - 1))
        busy(server.url, clients=2, rounds=2)
        first = probe(server, folder, 1)
        second = probe(server, folder, 2)
    finally:
        server.stop()
    assert first["tracemalloc"]["current"] > 0 and second["kernel"]["Rss"] > 0
    assert (folder / "probe-2.tracemalloc").stat().st_size > 0
    assert second["pool"]["checkedout"] == 0 and "rate_limit_windows" in second["caches"]


def test_the_probe_reads_each_cache_through_its_own_size_function(instance):
    """The probe asks each cache its size (no reaching into another module's private dict):
    an idle device-reading connection shows up as one entry."""
    import kiosk.booking.cache
    import kiosk.catalogue.search
    from kiosk.devices import access

    app = make_app(instance)
    with app.app_context():
        sizes = memprobe.in_process_caches()
        assert {"catalogue_counts", "availability", "devices"} <= sizes.keys()
        assert sizes["catalogue_counts"] == kiosk.catalogue.search.cached_counts()
        assert sizes["availability"] == len(kiosk.booking.cache.availability_cache)
        readers = access._readers.stack(db.engine)
        readers.append(access._readers.new(db.engine))
        try:
            assert memprobe.in_process_caches()["devices"] == sizes["devices"] + 1
        finally:
            readers.pop().close()
