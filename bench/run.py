"""Foundation benchmark: the kiosk's `/` and `/healthz` against a bare Flask hello-world, both
under waitress with the same threads, driven by the same wrk load in the same run.

    make bench            (or: .venv/bin/python bench/run.py [--seconds 10] [--connections 16])

Prints requests/s, p95 latency and the ratio to hello-world, plus each server's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, ROOT, THREADS, free_port, machine, peak_rss_mib, prepare_instance, server, wrk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    results: list[dict] = []
    # One connection is what a visitor at the screen feels; many is a burst (or the hub later).
    loads = sorted({1, args.connections})
    baseline: dict[int, dict] = {}

    port = free_port()
    with server([sys.executable, str(ROOT / "bench" / "hello.py"), str(port), str(THREADS)], port) as process:
        wrk(f"http://127.0.0.1:{port}/", args.connections, 2)  # warm-up
        for connections in loads:
            baseline[connections] = wrk(f"http://127.0.0.1:{port}/", connections, args.seconds)
            results.append({"server": "hello-world", "path": "/", "connections": connections, **baseline[connections], "rss_mib": peak_rss_mib(process.pid)})

    with tempfile.TemporaryDirectory() as tmp:
        prepare_instance(Path(tmp))
        port = free_port()
        command = [str(BIN / "kiosk"), "serve", "--port", str(port), "--threads", str(THREADS)]
        with server(command, port, env={"KIOSK_INSTANCE_PATH": tmp}, probe="/healthz") as process:
            for path in ("/", "/healthz"):
                wrk(f"http://127.0.0.1:{port}{path}", args.connections, 2)
                for connections in loads:
                    figures = wrk(f"http://127.0.0.1:{port}{path}", connections, args.seconds)
                    results.append({"server": "kiosk", "path": path, "connections": connections, **figures, "rss_mib": peak_rss_mib(process.pid)})

    print(f"machine: {machine()}")
    print(f"load: wrk (2 threads), {args.seconds} s per row; servers: waitress, {THREADS} threads; ratio = req/s / hello-world's at the same connections\n")
    print(f"{'server':12} {'path':9} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'ratio':>6} {'errors':>6} {'peak RSS MiB':>12}")
    for row in results:
        row["ratio"] = row["rps"] / baseline[row["connections"]]["rps"]
        print(
            f"{row['server']:12} {row['path']:9} {row['connections']:5d} {row['rps']:8.0f} {row['p50_us'] / 1000:7.1f} "
            f"{row['p95_us'] / 1000:7.1f} {row['ratio']:6.2f} {row['errors']:6d} {row['rss_mib']:12.1f}"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "foundation.json").write_text(json.dumps({"machine": machine(), "rows": results}, indent=2))


if __name__ == "__main__":
    main()
