"""Check-in benchmark: POST /c/checkin (the phone page a QR opens) under waitress at 20 and 100
concurrent connections, each request a different member checking in (check-in + points entry
+ outbox event in one serialised SQLite write with synchronous=FULL), against a bare Flask
hello-world measured with the same load in the same run.

    make bench   (runs this after bench/run.py)   or   .venv/bin/python bench/checkin.py
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, HEADER, ROOT, THREADS, format_row, free_port, machine, peak_rss_mib, prepare_instance, profile_calls, server, summarise, wrk

MEMBERS_PER_THREAD = 20_000


def prepare(instance: Path) -> str:
    """Demo instance + one open activity + members for every phone the load will use."""
    prepare_instance(instance)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | {"KIOSK_INSTANCE_PATH": str(instance)}
    script = """
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
from kiosk import create_app
from kiosk.extensions import db
from kiosk.checkin.services import save_activity, poster_token
from kiosk.checkin.settings import code_signer
app = create_app()
with app.app_context():
    now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(second=0, microsecond=0)
    a = save_activity(db.session, None, title="压测活动", category="community", description="", place="",
        starts_at=(now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"), ends_at=(now + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
        weekly=False, repeat_until="", capacity="", points="2", policy="once", zone=ZoneInfo("Asia/Shanghai"), actor=None)
    db.session.commit()
    print(poster_token(a, code_signer(app.config), app.config["CENTRE_CODE"]))
"""
    token = subprocess.run([str(BIN / "python"), "-c", script], env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    # Members straight into SQLite: registering 40,000 through the service would only time the setup.
    with sqlite3.connect(instance / "kiosk.sqlite3") as db:
        now = datetime.now(ZoneInfo("UTC")).isoformat()
        rows = [(f"压测{t}-{c}", f"150{t:02d}{c:06d}", "", "60-69", now, "bench", 1, 1, now, now) for t in range(4) for c in range(1, MEMBERS_PER_THREAD + 1)]
        db.executemany(
            "INSERT INTO member (name, phone, community, age_band, consent_at, consent_version, active, card_serial, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        # Fold the setup's writes into the database file now, so the measured run does not
        # pay for checkpointing 80,000 inserts.
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return token


def open_phone_page(base: str, token: str) -> dict[str, str]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    html = opener.open(f"{base}/c/{token}").read().decode()
    fields = dict(re.findall(r'name="(csrf_token|pass|activity)" value="([^"]*)"', html))
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    return {"BENCH_COOKIE": cookie, "BENCH_CSRF": fields["csrf_token"], "BENCH_PASS": fields["pass"], "BENCH_ACTIVITY": fields["activity"]}


def profile(requests: int, top: int) -> None:
    """Where one check-in's time goes, in process (test client, no server, no wrk): the time per
    check-in without the profiler, then cProfile's functions by cumulative time."""

    with tempfile.TemporaryDirectory() as tmp:
        token = prepare(Path(tmp))
        os.environ["KIOSK_INSTANCE_PATH"] = tmp
        os.environ["KIOSK_PHONE_CHECKIN_RATE_LIMIT"] = "10000000 per minute"
        os.environ["KIOSK_PASS_CHECKIN_LIMIT"] = "10000000 per minute"
        from kiosk import create_app

        app = create_app()
        client = app.test_client()
        html = client.get(f"/c/{token}").get_data(as_text=True)
        fields = dict(re.findall(r'name="(csrf_token|pass|activity)" value="([^"]*)"', html))
        phones = (f"150{t:02d}{c:06d}" for t in range(4) for c in range(1, MEMBERS_PER_THREAD + 1))

        def post() -> None:
            data = {"activity": fields["activity"], "pass": fields["pass"], "phone": next(phones)}
            response = client.post("/c/checkin", data=data, headers={"X-CSRFToken": fields["csrf_token"]})
            assert response.status_code == 200, response.status_code

        profile_calls(post, requests, top, "POST /c/checkin", "check-in")


def run_kiosk(instance: Path, token: str, connections: int, seconds: int, checkout: Path | None) -> tuple[dict, tuple, float]:
    """One row: `kiosk serve` (this checkout's, or ``checkout``'s code) on ``instance`` under wrk;
    returns wrk's figures, (requests, check-ins, points entries, events) and peak RSS."""
    port = free_port()
    env = {
        "KIOSK_INSTANCE_PATH": str(instance),
        "KIOSK_PHONE_CHECKIN_RATE_LIMIT": "10000000 per minute",
        # Every request uses the one pass the bench opened (a phone's pass checks in 3 numbers).
        "KIOSK_PASS_CHECKIN_LIMIT": "10000000 per minute",
    }
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout.resolve())
    command = [str(BIN / "kiosk"), "serve", "--port", str(port), "--threads", str(THREADS)]
    with server(command, port, env=env, probe="/healthz") as process:
        os.environ.update(open_phone_page(f"http://127.0.0.1:{port}", token))
        cpu = cpu_seconds(process.pid)
        figures = wrk(f"http://127.0.0.1:{port}/c/checkin", connections, seconds, script=ROOT / "bench" / "checkin.lua")
        # The server's CPU time per answered request (all its threads; the commit's wait for the
        # disk is not CPU): unlike req/s it hardly moves with other load on the machine.
        figures["cpu_ms"] = (cpu_seconds(process.pid) - cpu) * 1000 / max(figures["requests"], 1)
        rss = peak_rss_mib(process.pid)
    # The rows of the bench's activity only (the demo has check-ins, points and events of its own).
    with sqlite3.connect(instance / "kiosk.sqlite3") as db:
        counts = db.execute(
            "SELECT (SELECT count(*) FROM check_in WHERE activity_id = :a),"
            " (SELECT count(*) FROM points_entry WHERE reason = 'checkin' AND reference IN (SELECT 'checkin:' || id FROM check_in WHERE activity_id = :a)),"
            " (SELECT count(*) FROM outbox_event WHERE type = 'checkin.created' AND json_extract(payload, '$.activity_id') = :a)",
            {"a": int(os.environ["BENCH_ACTIVITY"])},
        ).fetchone()
    return figures, (figures["requests"], *counts), rss


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def enrol(instance: Path) -> None:
    """Give the instance a hub key, as on an enrolled kiosk: every event's phone is then sealed."""
    from kiosk.sync.protocol import new_box_keypair

    _, public = new_box_keypair()
    with sqlite3.connect(instance / "kiosk.sqlite3") as db:
        db.execute("DELETE FROM sync_state")
        db.execute(
            "INSERT INTO sync_state (id, hub_url, centre_code, key_id, key_secret, hub_public_key, acked_seq, pull_cursor, last_error)"
            " VALUES (1, '', '', '', '', ?, 0, 0, '')",
            (public,),
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[20, 100])
    parser.add_argument(
        "--compare", type=Path, help="another checkout (e.g. `git worktree add /tmp/before main`): its kiosk is measured in the same repetitions"
    )
    parser.add_argument("--enrolled", action="store_true", help="the kiosk has a hub key: phones in events are sealed")
    parser.add_argument("--profile", type=int, metavar="N", help="profile N check-ins in process instead (cProfile)")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.top)
        return
    loads = tuple(args.connections)
    kiosks: dict[str, Path | None] = {"kiosk": None}
    if args.compare:
        kiosks[f"kiosk [{args.compare.name}]"] = args.compare
    samples: dict[tuple[str, int], list[dict]] = {}
    written: dict[tuple[str, int], list[tuple]] = {}
    rss = dict.fromkeys(["hello", *kiosks], 0.0)

    hello_port = free_port()
    with server([sys.executable, str(ROOT / "bench" / "hello.py"), str(hello_port), str(THREADS)], hello_port) as hello:
        wrk(f"http://127.0.0.1:{hello_port}/", 20, 2)
        for repetition in range(args.repeat):
            for connections in loads:
                # A fresh instance per row (prepared before hello-world's row, so the setup's
                # disk writes do not overlap it): every row starts from the same database; a
                # compared checkout gets a copy of it. The kiosks take turns going first.
                with tempfile.TemporaryDirectory() as tmp:
                    instances = {}
                    for index, what in enumerate(kiosks):
                        instances[what] = Path(tmp) / str(index)
                        instances[what].mkdir()
                    first = instances["kiosk"]
                    token = prepare(first)
                    if args.enrolled:
                        enrol(first)
                    for path in instances.values():
                        if path != first:
                            for name in ("kiosk.toml", "kiosk.sqlite3"):
                                shutil.copy(first / name, path / name)
                    samples.setdefault(("hello", connections), []).append(wrk(f"http://127.0.0.1:{hello_port}/", connections, args.seconds))
                    order = list(kiosks) if repetition % 2 == 0 else list(reversed(kiosks))
                    for what in order:
                        figures, counts, peak = run_kiosk(instances[what], token, connections, args.seconds, kiosks[what])
                        samples.setdefault((what, connections), []).append(figures)
                        written.setdefault((what, connections), []).append(counts)
                        rss[what] = max(rss[what], peak)
        rss["hello"] = peak_rss_mib(hello.pid)

    print(f"machine: {machine()}")
    print(
        f"load: wrk (2 threads), {args.seconds} s per row, {args.repeat} repetitions alternating hello-world and the kiosk; "
        f"servers: waitress, {THREADS} threads; SQLite WAL, synchronous=FULL{'; enrolled (phones sealed)' if args.enrolled else ''}\n"
        "figures: median (range); ratio = req/s / hello-world's in the same repetition; "
        "written = (requests answered, check-ins, points entries, check-in events of the bench's activity) per repetition;\n"
        "check-ins may exceed the requests by those still in flight when wrk stopped; "
        "CPU ms/req = the kiosk process's CPU time (all threads) per answered request, median (range)\n"
    )
    print(HEADER + "  CPU ms/req  written")
    rows = []
    for connections in loads:
        for what in ("hello", *kiosks):
            row = summarise(samples[(what, connections)], samples[("hello", connections)])
            name, label = ("hello-world", "GET /") if what == "hello" else ("kiosk", "POST /c/checkin" + what.removeprefix("kiosk"))
            rows.append({"server": what if what != "hello" else name, "what": label, "connections": connections, **row, "rss_mib": rss[what]})
            extra = written[(what, connections)] if what != "hello" else ""
            rows[-1]["written"] = extra
            cpu = ""
            if what != "hello":
                values = [sample["cpu_ms"] for sample in samples[(what, connections)]]
                rows[-1]["cpu_ms"] = statistics.median(values)
                cpu = f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
            print(format_row(name, label, connections, row, rss[what]) + f"  {cpu:>10}  {extra}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "checkin.json").write_text(json.dumps({"machine": machine(), "enrolled": args.enrolled, "rows": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
