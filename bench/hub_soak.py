"""Hub soak (issue 14): 50 syncing kiosks against one hub (gunicorn on PostgreSQL) for N minutes,
in repeated rounds, reporting errors, p95 of a push per minute and the hub workers' RSS growth.

    bash scripts/postgres.sh run .venv/bin/python bench/hub_soak.py --minutes 10

Each kiosk (a thread with the kiosk's own HubClient: signed, gzipped, sealed phones) wakes every
--interval seconds (with jitter, as the kiosks' sync timers drift), and pushes the events of
the minutes since: --events per round (check-ins with sealed phones, bookings, redemptions,
loans; bench/sync.py's wire_events), its sequence continuing from the last acknowledged. An
error is a non-200 answer or no answer. At the end every centre's events are on the hub exactly
once with the acknowledged sequence at the top. The baseline is the same run's first minute
(warm-up): RSS growth after it, target ≤ 10 %; target zero errors. bench/sync.py's functions
are imported, not copied.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine, p95_ms, rss_mib, soak_minutes
from sync import add_centres, build_template, connect, exactly_once, fresh_database, issue_keys, load, running_hub, wire_events


def workers_rss(master: int) -> list[float]:
    children = [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    return [rss_mib(pid) for pid in children]


def kiosk_loop(
    url: str, key: tuple[str, str], seed: int, args, start: float, stop: threading.Event, samples: list, lock: threading.Lock, sent: dict, code: str
) -> None:
    from kiosk.sync import protocol
    from kiosk.sync.client import HubClient

    rng = random.Random(seed)
    client = HubClient(url, *key, app_version="hub-soak")
    seq = 0
    stop.wait(rng.uniform(0, args.interval))  # the fleet's timers are not in step
    while not stop.is_set():
        events = wire_events(args.events, start=datetime.now(UTC) - timedelta(minutes=5), seed=rng.randrange(1 << 30))
        for i, event in enumerate(events, 1):
            event["seq"], event["event_id"] = seq + i, str(uuid.uuid4())
        body = protocol.encode_batch(events)
        began = time.perf_counter()
        try:
            status = client.push(body).status
        except Exception:  # noqa: BLE001 - no answer (reset, timeout): an error of the soak
            status = 0
        elapsed = time.perf_counter() - began
        with lock:
            samples.append((int((time.monotonic() - start) // 60), elapsed, status))
        if status == 200:
            seq += len(events)
            sent[code] = seq
        stop.wait(args.interval * rng.uniform(0.8, 1.2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--kiosks", type=int, default=50)
    parser.add_argument("--interval", type=float, default=15, help="seconds between a kiosk's pushes (the sync timer, compressed)")
    parser.add_argument("--events", type=int, default=40, help="events per push")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers of the hub")
    args = parser.parse_args()
    pg = os.environ.get("TEST_POSTGRES_URL")
    if not pg:
        sys.exit("needs PostgreSQL: bash scripts/postgres.sh run .venv/bin/python bench/hub_soak.py")
    print(f"machine: {machine()}; load average at start {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-hub-soak.") as tmp:
        work = Path(tmp)
        build_template(pg, work)
        url = fresh_database(pg, "bench_hub_soak")
        codes = [f"SOAK-{i:03d}" for i in range(1, args.kiosks + 1)]
        add_centres(url, work, codes, ["XH-CY", "XH-GD", "XH-LY", "XH-XX"])
        keys = issue_keys(url, work, codes)
        with running_hub(url, work / "hub", args.workers) as hub:
            assert hub.process is not None
            start = time.monotonic()
            stop, lock = threading.Event(), threading.Lock()
            samples: list[tuple[int, float, int]] = []
            sent: dict[str, int] = dict.fromkeys(codes, 0)
            threads = [
                threading.Thread(target=kiosk_loop, args=(hub.url, keys[code], i, args, start, stop, samples, lock, sent, code)) for i, code in enumerate(codes)
            ]
            for thread in threads:
                thread.start()
            rss: list[tuple[float, list[float]]] = []
            loads: list[float] = []
            while time.monotonic() - start < args.minutes * 60:
                time.sleep(5)
                rss.append((time.monotonic() - start, workers_rss(hub.process.pid)))
                loads.append(os.getloadavg()[0])
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
        with connect(url) as conn:
            held = exactly_once(conn, codes)
    exact = sum(1 for code in codes if held.get(code) == (sent[code], sent[code], 1 if sent[code] else 0, sent[code], sent[code]))
    minutes = int(args.minutes + 0.999)
    print(
        f"hub soak: {args.minutes:g} min, {args.kiosks} kiosks pushing {args.events} events every ~{args.interval:g} s; "
        f"hub gunicorn {args.workers} workers on PostgreSQL"
    )
    print(f"load average (1 min) during the run: mean {statistics.mean(loads):.2f}, max {max(loads):.2f}")
    print(f"{'minute':>6} {'pushes':>6} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} {'workers RSS MiB (sum / largest)':>32}")
    rows = []
    for minute, (got, last) in enumerate(soak_minutes(samples, rss, minutes)):
        last = last or []
        row = {
            "minute": minute + 1,
            "pushes": len(got),
            "errors": sum(1 for s in got if s[2] != 200),
            "p50_ms": statistics.median([s[1] for s in got]) * 1000 if got else 0.0,
            "p95_ms": p95_ms([s[1] for s in got]),
            "rss_sum_mib": sum(last),
            "rss_max_mib": max(last, default=float("nan")),
        }
        rows.append(row)
        print(
            f"{row['minute']:6d} {row['pushes']:6d} {row['errors']:6d} {row['p50_ms']:7.1f} {row['p95_ms']:7.1f} {row['rss_sum_mib']:20.1f} / {row['rss_max_mib']:6.1f}"
        )
    warm, end = rows[0]["rss_sum_mib"], sum(rss[-1][1])
    growth = (end - warm) / warm * 100
    print(f"errors: {sum(r['errors'] for r in rows)} of {len(samples)} pushes (target 0); events sent {sum(sent.values())}")
    print(f"exactly once with the acknowledged sequence at the top: {exact}/{len(codes)} centres")
    print(f"hub workers' RSS: {warm:.1f} MiB after the warm-up minute, {end:.1f} MiB at the end: {growth:+.1f} % (target ≤ 10 %)")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "hub_soak.json").write_text(json.dumps({"machine": machine(), "args": vars(args), "rows": rows, "growth_pct": growth, "exact": exact}, indent=2))


if __name__ == "__main__":
    main()
