"""Soak: a realistic mix of kiosk, phone and staff traffic against `kiosk serve` for N minutes
(issue 14), reporting errors, p95 per minute and the server's RSS over time.

    .venv/bin/python bench/soak.py --minutes 10      (default 10; docs/benchmarks.md has a run)

The mix, with think time between actions as people have (not a throughput test):
- kiosks (enrolled browsers): home, check-in screen and keypad check-in, catalogue searches,
  booking a service for tomorrow, scanning a member card and redeeming a reward;
- phones: open the poster QR's page and check in with a number;
- staff at the desk: dashboard, member search, points corrections, lending and taking back a
  book, the queue, the activity's live count.
Every request is timed; an error is a 5xx, a refused connection or a timeout (a 4xx refusal
is counted apart, and broken down by route at the end: e.g. a full slot). Targets: zero
errors, RSS growth after the first (warm-up) minute at most 10 %. The baseline is the same
run's first minute.

    --probe [--probe-frames N]   the server's memory by kind every minute (kiosk.ops.memprobe),
                                 and with N > 0 what Python allocated between minute 2 and the end
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import BIN, ROOT, THREADS, free_port, machine, p95_ms, prepare_instance, rss_mib, server, soak_minutes

from tests.hardening.kiosk_process import UNKNOWN, Browser

NO_LIMIT = "10000000 per minute"
DEVICE_SECRET = "soak-kiosk-device-secret"
SEED = """
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
from kiosk import create_app
from kiosk.booking import services as booking
from kiosk.checkin.services import save_activity, poster_token
from kiosk.checkin.settings import code_signer
from kiosk.db import write_transaction
from kiosk.devices.models import KioskDevice
from kiosk.devices.services import hash_secret
from kiosk.extensions import db
from kiosk.members.services import card_token, register_member
from kiosk.points.models import PointsReason
from kiosk.points.services import award_points, save_reward
from kiosk.signing import signer_from_config

zone = ZoneInfo("Asia/Shanghai")
app = create_app()
with app.app_context():
    s = db.session
    now = datetime.now(zone).replace(second=0, microsecond=0)
    a = save_activity(s, None, title="长跑活动", category="community", description="", place="",
        starts_at=(now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"), ends_at=(now + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M"),
        weekly=False, repeat_until="", capacity="", points="2", policy="once", zone=zone, actor=None)
    signer = signer_from_config(app.config, "member-card")
    cards, members = [], []
    for i in range(200):
        m = register_member(s, name="会员" + chr(0x4E00 + i), phone=f"1880000{i:04d}", community="", age_band="60-69", consent=True, consent_version="t", actor=None)
        with write_transaction(s):
            award_points(s, m.id, 10000, PointsReason.CORRECTION, note="soak")
        cards.append(card_token(m, signer, app.config["CENTRE_CODE"]))
        members.append(m.id)
    reward = save_reward(s, None, name="纸巾", description="", cost=1, stock=100000, actor=None).id
    service = booking.save_service(s, None, name="理发", prefix="S", category="haircut", actor=None)
    for weekday in range(7):
        booking.save_template(s, service, weekday=weekday, starts="08:00", ends="20:00", slot_minutes=30, capacity="100", actor=None)
    with write_transaction(s):
        s.add(KioskDevice(name="soak", secret_hash=hash_secret("__SECRET__"), created_by="soak"))
    barcodes = [b for (b,) in s.execute(db.text("SELECT barcode FROM book_copy WHERE status = 'on_shelf' ORDER BY id LIMIT 20"))]
    s.commit()
    print(json.dumps({"activity": a.id, "token": poster_token(a, code_signer(app.config), app.config["CENTRE_CODE"]),
        "cards": cards, "members": members, "reward": reward, "service": service.id, "barcodes": barcodes}))
""".replace("__SECRET__", DEVICE_SECRET)
SEARCHES = ["红楼梦", "hlm", "三体", "xihu", "9787020002207", "刘慈欣", "杭州", "中国", "儿童", "紅樓夢"]


class Recorder:
    def __init__(self, start: float):
        self.start = start
        self.lock = threading.Lock()
        self.samples: list[tuple[int, str, float, int, str]] = []  # minute, kind, seconds, status (0 = no answer), route

    def add(self, kind: str, seconds: float, status: int, route: str) -> None:
        with self.lock:
            self.samples.append((int((time.monotonic() - self.start) // 60), kind, seconds, status, route))


def route_of(path: str, posted: bool) -> str:
    """The route a request went to, for the 4xx breakdown: ids and tokens in the path become
    <id> / <token>, the query string goes ("POST /booking/book", "GET /checkin/<id>")."""
    parts = []
    for part in path.split("?", 1)[0].split("/"):
        parts.append("<id>" if part.isdigit() else "<token>" if len(part) >= 20 else part)
    return ("POST " if posted else "GET ") + ("/".join(parts) or "/")


class Client(Browser):
    """The hardening tests' browser (tests/hardening/kiosk_process.py), every request timed and
    recorded; an HTMX request whenever it posts, as the kiosk pages do."""

    def __init__(self, base: str, recorder: Recorder, kind: str, device: bool = False):
        super().__init__(base, DEVICE_SECRET if device else None)
        self.recorder, self.kind = recorder, kind

    def go(self, path: str, data: dict | None = None) -> tuple[int, str]:
        began = time.perf_counter()
        status, text = self.request(path, data, htmx=data is not None)
        self.recorder.add(self.kind, time.perf_counter() - began, 0 if status == UNKNOWN else status, route_of(path, data is not None))
        return status, text


def kiosk_loop(base: str, seeded: dict, recorder: Recorder, stop: threading.Event, rng: random.Random, number: list[int], lock: threading.Lock) -> None:
    def next_phone(prefix: str) -> str:
        with lock:
            number[0] += 1
            return f"{prefix}{number[0]:08d}"

    tomorrow = time.strftime("%Y%m%d", time.localtime(time.time() + 86400 + 8 * 3600 - time.localtime().tm_gmtoff))
    while not stop.is_set():
        kiosk = Client(base, recorder, "kiosk", device=True)
        kiosk.go("/")
        action = rng.random()
        if action < 0.35:
            kiosk.go(f"/checkin/{seeded['activity']}")
            kiosk.go(f"/checkin/{seeded['activity']}/phone", {"phone": next_phone("139")})
        elif action < 0.6:
            kiosk.go("/catalogue")
            for _ in range(rng.randint(1, 3)):
                kiosk.go("/catalogue/search?" + urllib.parse.urlencode({"q": rng.choice(SEARCHES)}))
        elif action < 0.8:
            kiosk.go("/booking")
            kiosk.go(f"/booking/{seeded['service']}")
            key = os.urandom(16).hex()
            slot = tomorrow + rng.choice(["0800", "0930", "1100", "1400", "1630", "1900"])
            kiosk.go("/booking/book", {"service": seeded["service"], "slot": slot, "request_key": key, "phone": next_phone("137")})
        else:
            kiosk.go("/points")
            kiosk.go("/scan", {"code": rng.choice(seeded["cards"])})
            status, page = kiosk.go(f"/points/rewards/{seeded['reward']}")
            match = re.search(r'name="request_key" value="(\w+)"', page)
            if match:
                kiosk.go("/points/redeem", {"reward_id": seeded["reward"], "request_key": match.group(1)})
        kiosk.go("/session/end", {})
        stop.wait(rng.uniform(0.2, 1.0))


def phone_loop(base: str, seeded: dict, recorder: Recorder, stop: threading.Event, rng: random.Random, number: list[int], lock: threading.Lock) -> None:
    while not stop.is_set():
        phone = Client(base, recorder, "phone")
        status, page = phone.go(f"/c/{seeded['token']}")
        fields = dict(re.findall(r'name="(pass|activity)" value="([^"]*)"', page))
        with lock:
            number[0] += 1
            mobile = f"136{number[0]:08d}"
        if status == 200 and fields:
            phone.go("/c/checkin", fields | {"phone": mobile})
        stop.wait(rng.uniform(0.5, 2.0))


def staff_loop(base: str, seeded: dict, recorder: Recorder, stop: threading.Event, rng: random.Random, desk: int) -> None:
    staff = Client(base, recorder, "staff")
    staff.go("/staff/login")
    staff.go("/staff/login", {"username": "demo-admin", "password": "kiosk-demo-admin"})
    barcode = seeded["barcodes"][desk]
    while not stop.is_set():
        staff.go("/staff/")
        member = rng.choice(seeded["members"])
        action = rng.random()
        if action < 0.3:
            staff.go("/staff/members/?" + urllib.parse.urlencode({"q": f"{rng.randrange(10000):04d}"}))
            staff.go(f"/staff/members/{member}")
            staff.go(f"/staff/members/{member}/points", {"delta": "1", "note": "长跑补录"})
        elif action < 0.6:
            staff.go("/staff/catalogue/loans")
            staff.go("/staff/catalogue/loans", {"lend-member": str(member), "lend-barcode": barcode, "lend-days": "14"})
            staff.go("/staff/catalogue/loans", {"return-barcode": barcode})
        elif action < 0.8:
            staff.go("/staff/bookings/")
        else:
            staff.go(f"/staff/activities/{seeded['activity']}")
            staff.go(f"/checkin/{seeded['activity']}/count")
        stop.wait(rng.uniform(1.0, 3.0))


def wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            sys.exit(f"no memory probe at {path}")
        time.sleep(0.5)


def report_probes(folder: Path, count: int) -> None:
    """Each minute's probe, then what grew between the probe at minute 2 and the last one."""
    import tracemalloc

    mib = 1024 * 1024
    print("memory probe (MiB): minute, RSS, anonymous, SQLite heap (page cache), glibc in use / held free, traced by Python, gc objects, pool in/out, caches")
    figures = []
    for number in range(1, count + 1):
        wait_for(folder / f"probe-{number}.json")
        f = json.loads((folder / f"probe-{number}.json").read_text())
        figures.append(f)
        print(
            f"  {number:2d}  {f['kernel'].get('Rss', 0) / mib:6.1f} {f['kernel'].get('Anonymous', 0) / mib:6.1f}"
            f"  {f['sqlite'].get('memory_used', 0) / mib:5.1f} ({f['sqlite'].get('page_cache', 0) / mib:5.1f})"
            f"  {f['glibc'].get('in_use', 0) / mib:6.1f} / {f['glibc'].get('free_held', 0) / mib:5.1f}"
            f"  {f['tracemalloc']['current'] / mib:6.1f}  {f['gc']['objects']:7d}"
            f"  {f['pool'].get('checkedin', '?')}/{f['pool'].get('checkedout', '?')}  {json.dumps(f['caches'])}"
        )
        print("      anonymous resident by mapping (MiB): " + ", ".join(f"{k} {v / mib:.1f}" for k, v in f.get("anonymous", {}).items()))
    if count < 3 or not (folder / f"probe-{count}.tracemalloc").exists():
        return
    first, last = 2, count
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
    before = tracemalloc.Snapshot.load(str(folder / f"probe-{first}.tracemalloc")).filter_traces(ignore)
    after = tracemalloc.Snapshot.load(str(folder / f"probe-{last}.tracemalloc")).filter_traces(ignore)
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"Python allocations, probe {first} -> probe {last}: {total / mib:+.2f} MiB traced; largest growth by allocation site:")
    for stat in after.compare_to(before, "traceback")[:12]:
        frames = [f"{Path(frame.filename).name}:{frame.lineno}" for frame in list(stat.traceback)[::-1][:6]]
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  " + " < ".join(frames))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--kiosks", type=int, default=6)
    parser.add_argument("--phones", type=int, default=4)
    parser.add_argument("--staff", type=int, default=2)
    parser.add_argument(
        "--probe",
        action="store_true",
        help="trace the server's memory (kiosk.ops.memprobe): a probe every minute, then the growth from minute 2 to the end by allocation site and by kind of memory (slows the server; RSS figures then include the tracer's own)",
    )
    parser.add_argument("--probe-frames", type=int, default=4, help="frames traced per allocation with --probe (0: no tracing, the memory figures only)")
    parser.add_argument("--env", action="append", default=[], metavar="KIOSK_KEY=VALUE", help="extra configuration for the server (experiments)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp)
        prepare_instance(instance)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | {"KIOSK_INSTANCE_PATH": tmp}
        seeding = subprocess.run([str(BIN / "python"), "-c", SEED], env=env, capture_output=True, text=True, check=False)
        if seeding.returncode != 0:
            sys.exit("seeding failed:\n" + seeding.stderr[-3000:])
        seeded = json.loads(seeding.stdout.strip().splitlines()[-1])
        port = free_port()
        limits = {
            f"KIOSK_{k}": NO_LIMIT for k in ("KIOSK_CHECKIN_RATE_LIMIT", "NUMBER_CHECKIN_RATE_LIMIT", "PHONE_CHECKIN_RATE_LIMIT", "CARD_NUMBER_RATE_LIMIT")
        }
        limits |= {"KIOSK_MEMBER_SEARCH_RATE_LIMIT": NO_LIMIT, "KIOSK_LOGIN_RATE_LIMIT": NO_LIMIT, "KIOSK_PASS_CHECKIN_LIMIT": NO_LIMIT}
        command = [str(BIN / "kiosk"), "serve", "--port", str(port), "--threads", str(THREADS)]
        extra = dict(item.split("=", 1) for item in args.env)
        probes = ROOT / "bench" / "results" / "soak-probe"
        if args.probe:
            shutil.rmtree(probes, ignore_errors=True)
            extra["KIOSK_MEMORY_PROBE_DIR"] = str(probes)
            extra.setdefault("KIOSK_MEMORY_PROBE_FRAMES", str(args.probe_frames))
        with server(command, port, env={"KIOSK_INSTANCE_PATH": tmp, **limits, **extra}, probe="/healthz") as process:
            base = f"http://127.0.0.1:{port}"
            start = time.monotonic()
            recorder, stop, lock, number = Recorder(start), threading.Event(), threading.Lock(), [0]
            rng = random.Random(14)
            threads = [
                threading.Thread(target=kiosk_loop, args=(base, seeded, recorder, stop, random.Random(rng.random()), number, lock)) for _ in range(args.kiosks)
            ]
            threads += [
                threading.Thread(target=phone_loop, args=(base, seeded, recorder, stop, random.Random(rng.random()), number, lock)) for _ in range(args.phones)
            ]
            threads += [threading.Thread(target=staff_loop, args=(base, seeded, recorder, stop, random.Random(rng.random()), d)) for d in range(args.staff)]
            for thread in threads:
                thread.start()
            rss: list[tuple[float, float]] = []
            load: list[float] = []
            probed = 0
            while time.monotonic() - start < args.minutes * 60:
                time.sleep(5)
                rss.append((time.monotonic() - start, rss_mib(process.pid)))
                load.append(os.getloadavg()[0])
                if args.probe and rss[-1][0] >= (probed + 1) * 60:
                    probed += 1
                    os.kill(process.pid, signal.SIGUSR1)
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            if args.probe:
                probed += 1
                os.kill(process.pid, signal.SIGUSR1)
                wait_for(probes / f"probe-{probed}.json")
            with __import__("sqlite3").connect(instance / "kiosk.sqlite3") as db:
                integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    minutes = int(args.minutes + 0.999)
    print(f"machine: {machine()}")
    print(
        f"soak: {args.minutes:g} min, {args.kiosks} kiosks, {args.phones} phones, {args.staff} staff; waitress {THREADS} threads; SQLite WAL, synchronous=FULL"
    )
    print(f"load average (1 min) during the run: mean {statistics.mean(load):.2f}, max {max(load):.2f}")
    print(f"{'minute':>6} {'requests':>8} {'errors':>6} {'4xx':>5} {'p95 ms':>7} {'kiosk p95':>9} {'phone p95':>9} {'staff p95':>9} {'RSS MiB':>8}")
    rows = []
    for minute, (samples, rss_then) in enumerate(soak_minutes(recorder.samples, rss, minutes)):
        errors = sum(1 for s in samples if s[3] == 0 or s[3] >= 500)
        refused = sum(1 for s in samples if 400 <= s[3] < 500)
        kinds = {kind: p95_ms([s[2] for s in samples if s[1] == kind]) for kind in ("kiosk", "phone", "staff")}
        row = {
            "minute": minute + 1,
            "requests": len(samples),
            "errors": errors,
            "refused": refused,
            "p95_ms": p95_ms([s[2] for s in samples]),
            **{f"{k}_p95_ms": v for k, v in kinds.items()},
            "rss_mib": rss_then if rss_then is not None else float("nan"),
        }
        rows.append(row)
        print(
            f"{row['minute']:6d} {row['requests']:8d} {errors:6d} {refused:5d} {row['p95_ms']:7.1f} {kinds['kiosk']:9.1f} {kinds['phone']:9.1f} {kinds['staff']:9.1f} {row['rss_mib']:8.1f}"
        )
    warm = rows[0]["rss_mib"]
    growth = (rss[-1][1] - warm) / warm * 100
    total_errors = sum(r["errors"] for r in rows)
    print(f"errors: {total_errors} of {len(recorder.samples)} requests (target 0)")
    print(
        f"RSS: {warm:.1f} MiB after the warm-up minute, {rss[-1][1]:.1f} MiB at the end: {growth:+.1f} % (target ≤ 10 %); peak {max(m for _, m in rss):.1f} MiB"
    )
    print(f"database after the run: integrity_check {integrity}")
    refusals = collections.Counter((s[4], s[3]) for s in recorder.samples if 400 <= s[3] < 500)
    if refusals:
        print("4xx by route (route, status: count; minutes):")
        for (route, status), count in refusals.most_common():
            when = collections.Counter(s[0] + 1 for s in recorder.samples if s[4] == route and s[3] == status)
            print(f"  {route} {status}: {count}  (minutes {', '.join(f'{m}: {n}' for m, n in sorted(when.items()))})")
    if args.probe:
        report_probes(probes, probed)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "soak.json").write_text(
        json.dumps({"machine": machine(), "minutes": args.minutes, "rows": rows, "rss": rss, "load": load, "growth_pct": growth}, indent=2)
    )


if __name__ == "__main__":
    main()
