"""Shared benchmark plumbing: servers in subprocesses, wrk as the load generator."""

from __future__ import annotations

import http.cookiejar
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
THREADS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib(pid: int) -> float:
    """A process's resident memory now (VmRSS), MiB; NaN when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def p95_ms(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=20)[-1] * 1000 if len(seconds) >= 2 else (seconds[0] * 1000 if seconds else 0.0)


def soak_minutes(samples: list[tuple], rss: list[tuple[float, Any]], minutes: int) -> list[tuple[list[tuple], Any]]:
    """The soaks' per-minute view: (the samples of minute m (their first item is the minute; the
    last minute takes the stragglers), the last RSS reading by the minute's end) for each minute."""
    grouped: list[list[tuple]] = [[] for _ in range(minutes)]
    for sample in samples:
        grouped[min(sample[0], minutes - 1)].append(sample)
    return [(grouped[m], ([r for t, r in rss if t <= (m + 1) * 60] or [None])[-1]) for m in range(minutes)]


@contextmanager
def server(command: list[str], port: int, env: dict[str, str] | None = None, probe: str = "/"):
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}{probe}")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def prepare_instance(path: Path) -> None:
    """A kiosk instance with secrets and demo data, as `make run` leaves it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | {"KIOSK_INSTANCE_PATH": str(path)}
    for args in (["init"], ["demo"]):
        subprocess.run([str(BIN / "kiosk"), *args], env=env, check=True, capture_output=True)


def wrk(url: str, connections: int, seconds: int, script: Path | None = None, headers: dict[str, str] | None = None) -> dict:
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "-s", str(script or ROOT / "bench" / "report.lua")]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("{"))
    return json.loads(line)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


def enrol_kiosk(path: Path) -> str:
    """Enrol a kiosk device in the instance (kiosk.devices: kiosk pages answer only an enrolled
    browser); returns the Cookie header that browser sends (its device cookie)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | {"KIOSK_INSTANCE_PATH": str(path)}
    script = (
        "from kiosk import create_app\nfrom kiosk.extensions import db\nfrom kiosk.devices.services import enrol_device\n"
        "app = create_app()\nwith app.app_context():\n    print(enrol_device(db.session, 'bench', actor=None)[1])\n"
    )
    secret = subprocess.run([str(BIN / "python"), "-c", script], env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return f"kiosk_device={secret}"


def kept_cookie(url: str, device_cookie: str = "") -> str:
    """The Cookie header a kiosk browser sends once its session cookie has settled (the first
    visit creates the session, the second may add Flask-Login's marker; a browser keeps the
    latest), its device cookie included."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    for _ in range(3):
        request = urllib.request.Request(url)
        cookies = "; ".join([device_cookie] * bool(device_cookie) + [f"{c.name}={c.value}" for c in jar])
        if cookies:
            request.add_unredirected_header("Cookie", cookies)
        opener.open(request).read()
    return "; ".join([device_cookie] * bool(device_cookie) + [f"{c.name}={c.value}" for c in jar])


FIGURES = ("rps", "p50_us", "p95_us", "p99_us")


def summarise(samples: list[dict], baselines: list[dict]) -> dict:
    """Median and range over the repetitions; the ratio is taken per repetition (against the
    hello-world run measured next to it) before the median, so machine noise between
    repetitions cancels out."""
    ratios = [s["rps"] / b["rps"] for s, b in zip(samples, baselines, strict=True)]
    out: dict = {"n": len(samples), "errors": sum(s["errors"] for s in samples)}
    for key in FIGURES:
        values = [s[key] for s in samples]
        out[key], out[key + "_min"], out[key + "_max"] = statistics.median(values), min(values), max(values)
    out["ratio"], out["ratio_min"], out["ratio_max"] = statistics.median(ratios), min(ratios), max(ratios)
    return out


HEADER = (
    f"{'server':11} {'what':36} {'conns':>5} {'req/s (range)':>18} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'ratio (range)':>17} {'errors':>6} {'RSS MiB':>7}"
)


def format_row(server: str, what: str, connections: int, row: dict, rss: float) -> str:
    rps = f"{row['rps']:.0f} ({row['rps_min']:.0f}-{row['rps_max']:.0f})"
    ratio = f"{row['ratio']:.2f} ({row['ratio_min']:.2f}-{row['ratio_max']:.2f})"
    return (
        f"{server:11} {what:36} {connections:5d} {rps:>18} {row['p50_us'] / 1000:7.1f} {row['p95_us'] / 1000:7.1f} "
        f"{row['p99_us'] / 1000:7.1f} {ratio:>17} {row['errors']:6d} {rss:7.1f}"
    )


def profile_calls(call, requests: int, top: int, label: str, unit: str) -> None:
    """Warm up, time ``requests`` calls without the profiler (wall and the thread's CPU), then
    print cProfile's functions for as many more (by cumulative time; BENCH_SORT=tottime: by their
    own time). The in-process profile of bench/booking.py and bench/checkin.py."""
    import cProfile
    import pstats

    for _ in range(50):
        call()
    start, cpu = time.perf_counter(), time.thread_time()
    for _ in range(requests):
        call()
    plain, plain_cpu = (time.perf_counter() - start) / requests, (time.thread_time() - cpu) / requests
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        call()
    profiler.disable()
    print(f"{label}: {plain * 1000:.3f} ms per {unit} without the profiler, {plain_cpu * 1000:.3f} ms CPU (test client, in process)")
    pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(top)
