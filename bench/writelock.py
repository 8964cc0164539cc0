"""Where the served write's time goes: check-in (POST /c/checkin) and booking (POST /booking/book)
under wrk as bench/booking.py runs them, with the write timer on (kiosk.write_stats: KIOSK_WRITE_STATS,
measuring only) and the server's CPU per request from /proc.

Per row: req/s and p50; the server's CPU per answered request; the writer groups (units per
group; the lock held per group, wall and the leader's thread CPU; of which connect + BEGIN, the
units, the commit); each unit's own work (wall, under the lock); a request's whole stay in
grouped_write (queue + lock + commit). Optionally py-spy (--spy SECONDS) on the server during
the row, GIL-holding samples only, written as a collapsed-stack file next to the output.

    .venv/bin/python bench/writelock.py [--seconds 5] [--repeat 1] [--conns 20,100] [--only booking|checkin] [--spy 4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import booking
import checkin
from common import BIN, ROOT, THREADS, free_port, server, wrk

SPY_MODE = ["gil"]


def _ms(values: list[float], p: float | None = None) -> float:
    if not values:
        return 0.0
    if p is None:
        return statistics.mean(values) * 1000
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def summary(stats: dict, requests: int, cpu: float, seconds: int) -> dict:
    groups = stats["groups"]
    sizes = [g[0] for g in groups]
    units = sum(sizes)
    held = sum(g[1] for g in groups)
    return {
        "groups": len(groups),
        "units": units,
        "size_mean": units / max(len(groups), 1),
        "size_median": statistics.median(sizes) if sizes else 0,
        "size_max": max(sizes, default=0),
        "held_ms_group": _ms([g[1] for g in groups]),
        "held_cpu_ms_group": _ms([g[2] for g in groups]),
        "begin_ms_group": _ms([g[3] for g in groups]),
        "units_ms_group": _ms([g[4] for g in groups]),
        "commit_ms_group": _ms([g[5] for g in groups]),
        "commit_ms_p50": _ms([g[5] for g in groups], 50),
        "commit_ms_p95": _ms([g[5] for g in groups], 95),
        "commit_ms_max": _ms([g[5] for g in groups], 100),
        "begin_ms_p50": _ms([g[3] for g in groups], 50),
        "begin_ms_p95": _ms([g[3] for g in groups], 95),
        "held_ms_unit": held * 1000 / max(units, 1),
        "begin_ms_unit": sum(g[3] for g in groups) * 1000 / max(units, 1),
        "units_ms_unit": sum(g[4] for g in groups) * 1000 / max(units, 1),
        "commit_ms_unit": sum(g[5] for g in groups) * 1000 / max(units, 1),
        "slow_commits_ms_unit": sum(g[5] for g in groups if g[5] > 0.010) * 1000 / max(units, 1),
        "held_share": held / seconds,  # of the row's wall time, the lock held
        "unit_ms_mean": _ms(stats["units"]),
        "unit_ms_p50": _ms(stats["units"], 50),
        "unit_ms_p95": _ms(stats["units"], 95),
        "stay_ms_p50": _ms(stats["stays"], 50),
        "stay_ms_p95": _ms(stats["stays"], 95),
        "lock_wait_ms_p50": _ms(stats["lock_waits"], 50),
        "cpu_ms_request": cpu * 1000 / max(requests, 1),
    }


def row(label: str, connections: int, seconds: int, spy: int, out: Path) -> dict:
    # A row's label is the kind, optionally with environment settings for its server
    # ("booking:NAME=VALUE,…": a variant for measuring only).
    kind, _, settings = label.partition(":")
    variant = dict(setting.split("=", 1) for setting in settings.split(",") if setting)
    name = re.sub(r"[^\w=,.-]+", "_", f"{kind}{settings}")  # for the files written
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp)
        stats_file = instance / "write-stats.json"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"KIOSK_INSTANCE_PATH": tmp, "KIOSK_WRITE_STATS": str(stats_file), **variant}
        if kind == "checkin":
            token = checkin.prepare(instance)
            unlimited = "10000000 per minute"
            env |= {"KIOSK_PHONE_CHECKIN_RATE_LIMIT": unlimited, "KIOSK_PASS_CHECKIN_LIMIT": unlimited}
        else:
            info = booking.prepare(instance)
        command = [str(BIN / "kiosk"), "serve", "--threads", str(THREADS), "--port", str(port)]
        with server(command, port, env=env, probe="/healthz") as process:
            if kind == "checkin":
                os.environ.update(checkin.open_phone_page(base, token))
                url, script = base + "/c/checkin", ROOT / "bench" / "checkin.lua"
            else:
                page = f"/booking/{info['service']}?day={info['day']}"
                cookie, csrf = booking.kiosk_session(base, info["secret"], page)
                os.environ.update({"BENCH_COOKIE": cookie, "BENCH_CSRF": csrf, "BENCH_SERVICE": str(info["service"]), "BENCH_SLOTS": ",".join(info["slots"])})
                url, script = base + "/booking/book", ROOT / "bench" / "booking.lua"
            time.sleep(1.2)  # the stats thread's first dump (the warm-up requests) is in the file
            before = json.loads(stats_file.read_text()) if stats_file.exists() else {"groups": [], "units": [], "stays": [], "lock_waits": []}
            cpu, user = checkin.cpu_seconds(process.pid), user_seconds(process.pid)
            threads = thread_cpu(process.pid)
            spying = None
            if spy:
                flame = out / f"spy-{SPY_MODE[0]}-{name}-{connections}.txt"
                spying = subprocess.Popen(
                    [
                        str(BIN / "py-spy"),
                        "record",
                        f"--{SPY_MODE[0]}",
                        "--threads",
                        "-r",
                        "200",
                        "-d",
                        str(spy),
                        "-f",
                        "raw",
                        "-o",
                        str(flame),
                        "-p",
                        str(process.pid),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            figures = wrk(url, connections, seconds, script=script)
            cpu, user = checkin.cpu_seconds(process.pid) - cpu, user_seconds(process.pid) - user
            threads = {tid: spent - threads.get(tid, 0.0) for tid, spent in thread_cpu(process.pid).items()}
            main_thread = threads.pop(process.pid, 0.0)
            if spying is not None:
                spying.wait()
            time.sleep(1.5)
            after = json.loads(stats_file.read_text())
    stats = {name: after[name][len(before[name]) :] for name in after}
    (out / f"writelock-{name}-{connections}.json").write_text(json.dumps(stats))
    return {
        "rps": figures["rps"],
        "p50_ms": figures["p50_us"] / 1000,
        **summary(stats, figures["requests"], cpu, seconds),
        "user_ms_request": user * 1000 / max(figures["requests"], 1),
        # waitress's main thread runs the socket loop (accept, read, parse, queue, send); the
        # others are its workers (and the stats thread, asleep).
        "loop_cpu_ms_request": main_thread * 1000 / max(figures["requests"], 1),
        "workers_cpu_ms_request": sum(threads.values()) * 1000 / max(figures["requests"], 1),
    }


def thread_cpu(pid: int) -> dict[int, float]:
    """User + system CPU seconds of each thread of a process so far (/proc/PID/task/TID/stat)."""
    spent = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        spent[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return spent


def user_seconds(pid: int) -> float:
    """User CPU time of a process so far (/proc/PID/stat; the rest of cpu_seconds is the kernel's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--conns", default="20,100")
    parser.add_argument("--only", choices=("booking", "checkin"))
    parser.add_argument("--rows", help="the rows in turn, comma-free labels separated by spaces: checkin booking booking:NAME=VALUE")
    parser.add_argument("--spy", type=int, default=0, help="py-spy for this many seconds of each row")
    parser.add_argument("--spy-mode", choices=("gil", "idle"), default="gil", help="GIL-holding samples, or every thread's (--idle)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    SPY_MODE[0] = args.spy_mode
    out = Path(args.out)
    out.mkdir(exist_ok=True, parents=True)
    kinds = args.rows.split() if args.rows else [args.only] if args.only else ["checkin", "booking"]
    results = []
    with open("/proc/loadavg") as fh:
        print("load average at the start:", " ".join(fh.read().split()[:3]))
    for _ in range(args.repeat):
        for connections in (int(c) for c in args.conns.split(",")):
            for kind in kinds:
                result = {"kind": kind, "conns": connections, **row(kind, connections, args.seconds, args.spy, out)}
                results.append(result)
                print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}), flush=True)
    with open("/proc/loadavg") as fh:
        print("load average at the end:", " ".join(fh.read().split()[:3]))
    (out / "writelock.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
