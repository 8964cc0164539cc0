"""Booking benchmark (issue 11): the availability a visitor sees and booking requests, against
hello-world and check-in measured in the same run.

- Availability: one service with 20 slots a day bookable over 30 days (today + 29), after the
  booking row has filled part of the month. GET /booking/<id>?day=… (the page a tile tap opens:
  the day strip of 30 days with their free places, and the chosen day's 20 slots) and the
  same as htmx asks for it when a day of the strip is tapped (the strip + slots fragment),
  at 20 and 100 connections; and `kiosk.booking.services.availability()` timed in process.
- Booking: POST /booking/book as the keypad's htmx request, each request a new phone number
  and request key, the slots taken round the month (20 places each: 11,600 in the 29 days bookable,
  several times what a 5 s row asks for, so every request books a place): phone check, rules,
  the serialised write (slot row, place, ticket number, booking, outbox event; SQLite WAL,
  synchronous=FULL), the ticket fragment. Check-in (bench/checkin.py's POST /c/checkin) is
  measured in the same repetitions, each on a fresh instance, so the two writes compare.
- Afterwards the database is counted: bookings, booking.created events, request keys, slots
  whose booked count exceeds their capacity or differs from their open bookings.

    make bench   (after bench/checkin.py)   or   .venv/bin/python bench/booking.py [--seconds 10] [--repeat 3]
    .venv/bin/python bench/booking.py --profile 1000 [--top 40]   (where one booking's time goes, in process)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import checkin
from common import BIN, HEADER, ROOT, THREADS, format_row, free_port, machine, peak_rss_mib, prepare_instance, profile_calls, server, summarise, wrk

SLOTS_A_DAY = 20  # 08:00–18:00, 30 minutes
PLACES = 20  # at 5 the month (2,900 places) ran out within a 5 s row at ~550 req/s (docs/benchmarks.md)
DAYS = 30

SETUP = """
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
from kiosk import create_app
from kiosk.extensions import db
from kiosk.booking import services
from kiosk.devices.services import enrol_device
app = create_app()
with app.app_context():
    zone = ZoneInfo(app.config["TIMEZONE"])
    service = services.save_service(db.session, None, name="压测理发", prefix="Z", category="haircut", place="一楼",
        lead_minutes=0, horizon_days={days} - 1, per_person_limit=1, actor=None)
    for weekday in range(7):
        services.save_template(db.session, service, weekday=weekday, starts="08:00", ends="18:00", slot_minutes=30,
            capacity={places}, actor=None)
    device, secret = enrol_device(db.session, "压测终端", actor=None)
    tomorrow = datetime.now(zone).date() + timedelta(days=1)
    days = services.availability(db.session, service, services.utcnow(), zone)
    slots = [s.key(zone) for d in days if d.day >= tomorrow for s in d.slots]
    print(json.dumps({{"service": service.id, "secret": secret, "slots": slots, "day": tomorrow.isoformat()}}))
"""

SERVICE_LAYER = """
import json, time
from zoneinfo import ZoneInfo
from kiosk import create_app
from kiosk.extensions import db
from kiosk.booking import services
app = create_app()
with app.app_context():
    zone = ZoneInfo(app.config["TIMEZONE"])
    service = services.get_service(db.session, {service})
    timings = []
    for n in range({rounds} + 20):
        db.session.expire_all()
        started = time.perf_counter()
        days = services.availability(db.session, service, services.utcnow(), zone)
        elapsed = time.perf_counter() - started
        db.session.rollback()
        if n >= 20:  # warm-up
            timings.append(elapsed * 1000)
    assert len(days) == {days} and max(len(d.slots) for d in days) == {slots}, (len(days), [len(d.slots) for d in days])
    print(json.dumps(timings))
"""


def instance_env(instance: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | {"KIOSK_INSTANCE_PATH": str(instance)}


def prepare(instance: Path, places: int = PLACES) -> dict:
    """Demo instance + the bench service (20 slots a day, 30 days) + an enrolled kiosk."""
    prepare_instance(instance)
    script = SETUP.format(days=DAYS, places=places)
    out = subprocess.run([str(BIN / "python"), "-c", script], env=instance_env(instance), check=True, capture_output=True, text=True).stdout
    info = json.loads(out.strip().splitlines()[-1])
    with sqlite3.connect(instance / "kiosk.sqlite3") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return info


def kiosk_session(base: str, secret: str, path: str) -> tuple[str, str]:
    """The Cookie header of the enrolled kiosk browser once its session cookie has settled, and
    the CSRF token of its session (from the page's meta tag)."""
    cookies = {"kiosk_device": secret}
    csrf = ""
    for _ in range(3):
        request = urllib.request.Request(base + path, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
        with urllib.request.urlopen(request) as response:
            html = response.read().decode()
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                cookies[name.strip()] = rest.split(";", 1)[0]
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
    return "; ".join(f"{k}={v}" for k, v in cookies.items()), csrf


def count(instance: Path) -> dict:
    with sqlite3.connect(instance / "kiosk.sqlite3") as db:
        bookings, keys, events, over, mismatched = db.execute(
            "SELECT (SELECT count(*) FROM booking), (SELECT count(DISTINCT request_key) FROM booking),"
            " (SELECT count(*) FROM outbox_event WHERE type = 'booking.created'),"
            " (SELECT count(*) FROM service_slot WHERE booked > capacity),"
            " (SELECT count(*) FROM service_slot s WHERE booked != (SELECT count(*) FROM booking b WHERE b.slot_id = s.id))"
        ).fetchone()
    return {"bookings": bookings, "request_keys": keys, "events": events, "overbooked_slots": over, "slots_miscounted": mismatched}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def keypad_bookings(tmp: str, places: int = PLACES) -> tuple[Any, Callable[[], None]]:
    """In process (test client): a prepared instance's app and one keypad booking as
    booking.lua sends it (htmx POST /booking/book from the enrolled kiosk, a new phone and
    request key each, the slots taken round the month; any thread)."""
    info = prepare(Path(tmp), places=places)
    os.environ["KIOSK_INSTANCE_PATH"] = tmp
    from kiosk import create_app

    app = create_app()
    client = app.test_client()
    client.set_cookie("kiosk_device", info["secret"])
    html = client.get(f"/booking/{info['service']}?day={info['day']}").get_data(as_text=True)
    # Like wrk: every request sends the same cookies (the kiosk's session as it settled).
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
    headers = {"X-CSRFToken": csrf, "HX-Request": "true", "HX-Target": "booking-result"}
    slots = info["slots"]
    counter = itertools.count(1)
    numbers = threading.Lock()

    def one() -> None:
        with numbers:
            n = next(counter)
        phone = f"151{n:08d}"
        data = {"service": str(info["service"]), "slot": slots[n % len(slots)], "request_key": f"bench{phone}", "phone": phone}
        response = client.post("/booking/book", data=data, headers=headers)
        assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:300])

    return app, one


def profile(requests: int, top: int) -> None:
    """Where one booking's time goes, in process (test client, no server, no wrk): the time per
    booking without the profiler and the CPU time of the thread, then cProfile's functions by
    cumulative time (BENCH_SORT=tottime: by their own time)."""
    with tempfile.TemporaryDirectory() as tmp:
        _app, post = keypad_bookings(tmp)
        profile_calls(post, requests, top, "POST /booking/book", "booking")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=300, help="service-layer availability calls per repetition")
    parser.add_argument("--profile", type=int, metavar="N", help="profile N bookings in process instead (cProfile; N ≤ 1400)")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.top)
        return
    loads = (20, 100)
    samples: dict[tuple[str, int], list[dict]] = {}
    written: dict[tuple[str, int], list] = {}
    service_ms: list[float] = []
    rss = {"hello": 0.0, "checkin": 0.0, "booking": 0.0}
    kiosk_cmd = [str(BIN / "kiosk"), "serve", "--threads", str(THREADS), "--port"]

    hello_port = free_port()
    with server([sys.executable, str(ROOT / "bench" / "hello.py"), str(hello_port), str(THREADS)], hello_port) as hello:
        wrk(f"http://127.0.0.1:{hello_port}/", 20, 2)
        for _ in range(args.repeat):
            for connections in loads:

                def add(what: str, figures: dict, connections: int = connections) -> None:
                    samples.setdefault((what, connections), []).append(figures)

                # Fresh instances, prepared before hello-world's row so their disk writes do not
                # overlap a measured row.
                with tempfile.TemporaryDirectory() as tmp_checkin, tempfile.TemporaryDirectory() as tmp_booking:
                    token = checkin.prepare(Path(tmp_checkin))
                    info = prepare(Path(tmp_booking))
                    add("hello", wrk(f"http://127.0.0.1:{hello_port}/", connections, args.seconds))

                    port = free_port()
                    # The rate limits (their own tests cover them) would answer 429 instead of checking in:
                    # the per-pass limit since issue 10 (bench/checkin.py does not lift that one).
                    unlimited = "10000000 per minute"
                    env = {"KIOSK_INSTANCE_PATH": tmp_checkin, "KIOSK_PHONE_CHECKIN_RATE_LIMIT": unlimited, "KIOSK_PASS_CHECKIN_LIMIT": unlimited}
                    with server([*kiosk_cmd, str(port)], port, env=env, probe="/healthz") as process:
                        os.environ.update(checkin.open_phone_page(f"http://127.0.0.1:{port}", token))
                        figures = wrk(f"http://127.0.0.1:{port}/c/checkin", connections, args.seconds, script=ROOT / "bench" / "checkin.lua")
                        add("checkin", figures)
                        rss["checkin"] = max(rss["checkin"], peak_rss_mib(process.pid))
                    with sqlite3.connect(Path(tmp_checkin) / "kiosk.sqlite3") as db:
                        checkins = db.execute("SELECT count(*) FROM check_in").fetchone()[0]
                    written.setdefault(("checkin", connections), []).append((figures["requests"], figures["errors"], checkins))

                    port = free_port()
                    base = f"http://127.0.0.1:{port}"
                    page = f"/booking/{info['service']}?day={info['day']}"
                    with server([*kiosk_cmd, str(port)], port, env={"KIOSK_INSTANCE_PATH": tmp_booking}, probe="/healthz") as process:
                        cookie, csrf = kiosk_session(base, info["secret"], page)
                        os.environ.update(
                            {"BENCH_COOKIE": cookie, "BENCH_CSRF": csrf, "BENCH_SERVICE": str(info["service"]), "BENCH_SLOTS": ",".join(info["slots"])}
                        )
                        figures = wrk(base + "/booking/book", connections, args.seconds, script=ROOT / "bench" / "booking.lua")
                        add("booking", figures)
                        after = count(Path(tmp_booking))
                        written.setdefault(("booking", connections), []).append({"requests": figures["requests"], "non_2xx": figures["errors"], **after})
                        # The month now has bookings: the visitor's view of it.
                        cookie, _csrf = kiosk_session(base, info["secret"], page)
                        add("page", wrk(base + page, connections, args.seconds, headers={"Cookie": cookie}))
                        day_tap = {"Cookie": cookie, "HX-Request": "true", "HX-Target": "booking-day", "HX-Current-URL": base + page}
                        add("day", wrk(base + page, connections, args.seconds, headers=day_tap))
                        rss["booking"] = max(rss["booking"], peak_rss_mib(process.pid))
                    if connections == loads[0]:
                        script = SERVICE_LAYER.format(service=info["service"], rounds=args.rounds, days=DAYS, slots=SLOTS_A_DAY)
                        out = subprocess.run(
                            [str(BIN / "python"), "-c", script], env=instance_env(Path(tmp_booking)), check=True, capture_output=True, text=True
                        )
                        service_ms += json.loads(out.stdout.strip().splitlines()[-1])
        rss["hello"] = peak_rss_mib(hello.pid)

    labels = {
        "hello": ("hello-world", "GET /"),
        "checkin": ("kiosk", "POST /c/checkin"),
        "booking": ("kiosk", "POST /booking/book"),
        "page": ("kiosk", "GET /booking/<id>?day= (page)"),
        "day": ("kiosk", "GET … (htmx day tap)"),
    }
    print(f"machine: {machine()}")
    with open("/proc/loadavg") as fh:
        print(f"load average at the end: {' '.join(fh.read().split()[:3])}")
    print(
        f"load: wrk (2 threads), {args.seconds} s per row, {args.repeat} repetitions alternating hello-world, check-in and booking "
        f"(fresh instances each); servers: waitress, {THREADS} threads; SQLite WAL, synchronous=FULL\n"
        f"availability: 1 service, {SLOTS_A_DAY} slots a day, {DAYS} days, {PLACES} places a slot\n"
        "figures: median (range); ratio = req/s / hello-world's in the same repetition\n"
    )
    print(HEADER)
    rows = []
    for connections in loads:
        for what in labels:
            row = summarise(samples[(what, connections)], samples[("hello", connections)])
            name, label = labels[what]
            process = "booking" if what in ("page", "day") else what
            rows.append({"server": name, "what": label, "connections": connections, **row, "rss_mib": rss[process]})
            print(format_row(name, label, connections, row, rss[process]))
    kinds = [
        f"{labels[what][1]} at {connections}: "
        + ", ".join(f"{k} {sum(s.get(k, 0) for s in samples[(what, connections)])}" for k in ("timeouts", "non_2xx", "socket"))
        for connections in loads
        for what in labels
        if any(s["errors"] for s in samples[(what, connections)])
    ]
    if kinds:
        print("errors by kind (bench/report.lua): " + "; ".join(kinds))
    for connections in loads:
        checkin_rps = [s["rps"] for s in samples[("checkin", connections)]]
        booking_rps = [s["rps"] for s in samples[("booking", connections)]]
        ratios = [b / c for b, c in zip(booking_rps, checkin_rps, strict=True)]
        print(f"booking ÷ check-in req/s at {connections}: median {statistics.median(ratios):.2f} (per repetition: {', '.join(f'{r:.2f}' for r in ratios)})")
    print("\nwritten (booking): one line per repetition; bookings may exceed requests by those still in flight when wrk stopped")
    for connections in loads:
        for entry in written[("booking", connections)]:
            print(f"  {connections:3d} conns: {entry}")
        print(f"  {connections:3d} conns check-in (requests, non-2xx, check-ins): {written[('checkin', connections)]}")
    print(
        f"\nservice layer availability() over {DAYS} days × {SLOTS_A_DAY} slots, {len(service_ms)} calls: "
        f"p50 {percentile(service_ms, 50):.2f} ms, p95 {percentile(service_ms, 95):.2f} ms, max {max(service_ms):.2f} ms"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "booking.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "rows": rows,
                "written": {f"{k[0]}@{k[1]}": v for k, v in written.items()},
                "service_layer_ms": {"p50": percentile(service_ms, 50), "p95": percentile(service_ms, 95), "n": len(service_ms)},
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
