"""Issue 13's full fault run: a 50,000-event push with 10 SIGKILLs of the kiosk or the hub
mid-sync, then every (centre, event_id) on the hub exactly once and the acknowledged sequence
without gaps. (`make test` runs the same shape at 3,000 events and 3 kills:
tests/sync/test_sync_faults.py.)

    bash scripts/postgres.sh run .venv/bin/python bench/sync_faults.py [--events 50000] [--kills 10]

A `kiosk sync` process is kept running; at random moments (while the hub still lacks events)
either the hub (gunicorn master and workers, the whole process group) or the kiosk's sync
process is killed with SIGKILL, alternately. A killed hub is restarted at once and the running
sync carries on after its backoff; a killed sync is started again, as the next timer run would.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sync as bench
from common import ROOT, machine


def acked(conn, code: str) -> int:
    row = conn.execute("SELECT h.acked_seq FROM hub_centre h JOIN centre c ON c.id = h.centre_id WHERE c.code = %s", (code,)).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    pg = os.environ.get("TEST_POSTGRES_URL")
    if not pg:
        sys.exit("needs PostgreSQL: bash scripts/postgres.sh run .venv/bin/python bench/sync_faults.py")
    print(f"Machine: {machine()}; load average at start {bench.load()}", flush=True)
    rng = random.Random(args.seed)
    code = "XH-CY-CY1"
    with tempfile.TemporaryDirectory(prefix="bench-sync-faults.") as tmp:
        work = Path(tmp)
        bench.build_template(pg, work)
        url = bench.fresh_database(pg, "bench_faults")
        key = bench.issue_keys(url, work, [code])[code]
        hub = bench.HubProcess(url, work / "hub", workers=args.workers).start()
        instance = work / "kiosk"
        database = bench.new_kiosk(bench.kiosk_template(work), instance, hub.url, code, key)
        bench.fill_outbox(database, bench.wire_events(args.events, start=datetime(2026, 10, 1, tzinfo=UTC), seed=3))
        conn = bench.connect(url)

        def start_sync() -> subprocess.Popen:
            command = [sys.executable, "-m", "kiosk.cli", "sync", "--quiet", "--budget", "300"]
            return subprocess.Popen(command, env=bench.kiosk_env(instance), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        started = time.perf_counter()
        run = start_sync()
        kills: list[str] = []
        try:
            while len(kills) < args.kills:
                time.sleep(rng.uniform(1.0, 2.5))
                held = acked(conn, code)
                if held >= args.events:
                    print(f"  the hub holds everything after {len(kills)} kills: stopping early", flush=True)
                    break
                if run.poll() is not None:  # finished or gave up: the next timer run
                    run = start_sync()
                    continue
                if len(kills) % 2 == 0:
                    hub.kill()
                    kills.append(f"hub at {held}")
                    time.sleep(rng.uniform(0.2, 1.0))
                    hub.start()  # the running sync goes on after its backoff
                else:
                    run.kill()
                    run.wait()
                    kills.append(f"kiosk at {held}")
                    run = start_sync()
                print(f"  kill {len(kills)}: {kills[-1]} of {args.events} acknowledged", flush=True)
            run.wait(timeout=600)
            final = subprocess.run(
                [sys.executable, "-m", "kiosk.cli", "sync", "--quiet"], env=bench.kiosk_env(instance), cwd=ROOT, capture_output=True, text=True, check=False
            )
            seconds = time.perf_counter() - started
            total = bench.outbox_size(database)
            rows, distinct, low, high, acked_seq = bench.exactly_once(conn, [code])[code]
            gaps = conn.execute(
                "SELECT count(*) FROM generate_series(1, %s) s WHERE NOT EXISTS "
                "(SELECT 1 FROM hub_event e JOIN centre c ON c.id = e.centre_id WHERE c.code = %s AND e.seq = s)",
                (total, code),
            ).fetchone()[0]
            unsent = int(bench.sqlite3.connect(database).execute("SELECT count(*) FROM outbox_event WHERE sent_at IS NULL").fetchone()[0])
        finally:
            if run.poll() is None:
                run.kill()
            hub.stop()
            conn.close()
    ok = final.returncode == 0 and rows == distinct == high == acked_seq == total and low == 1 and gaps == 0 and unsent == 0
    print(
        f"{args.events} events (+{total - args.events} from the nightly hooks), {len(kills)} kills ({', '.join(kills)}), {seconds:.0f} s; "
        f"load {bench.load()}\n"
        f"  hub: {rows} rows, {distinct} distinct event_ids, seq {low}..{high}, acknowledged {acked_seq}, gaps {gaps}; kiosk: {unsent} unsent\n"
        f"  exactly once, no gaps: {'yes' if ok else 'NO'}" + ("" if final.returncode == 0 else f"\n  final sync failed: {final.stderr[-500:]}"),
        flush=True,
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
