"""Sync and district hub benchmark (issue 13), on a throwaway PostgreSQL.

    make bench-sync        (scripts/postgres.sh run .venv/bin/python bench/sync.py)
    .venv/bin/python bench/sync.py --part ingest|catchup|fleet|dashboard ...   (TEST_POSTGRES_URL set)

1. ingest: hub ingest events/s through the real API path (signed gzip batches of 500 POSTed
   to the hub under gunicorn, sealed phones opened, pseudonyms, acknowledged sequence, the
   batch queued for the roll-ups) against, in the same run and into the same table of fresh
   databases of the same schema, a bare COPY and an executemany (psycopg 3, plain INSERT) of
   the same rows as the hub stores them (phones already opened: the baselines do no crypto).
   The roll-ups follow off the request (kiosk.hub.rollup), so the part also reports when the
   queue is empty after one kiosk's push, push + roll-up events/s, and the roll-up alone.
2. catchup: a kiosk offline for 30 days (60,000 events in its outbox, phones sealed as an
   enrolled kiosk writes them) catches up in one `kiosk sync`: time, kiosk push events/s end
   to end over HTTP, peak RSS of the kiosk process and of the hub's workers.
3. fleet: 50 kiosks (processes) run `kiosk sync` at once against one hub (gunicorn, several
   workers): failed runs, retries, 5xx answers, wall time, and every (centre, event_id)
   exactly once with acknowledged sequences without gaps afterwards.
4. dashboard: 200 centres x a year of events (seeded by COPY, roll-ups built by SQL from the
   events as ingest keeps them), then GET /district/ for that year and for a month as a
   logged-in district user, p50/p95 over --rounds requests; the same figures straight from
   hub_event are timed as the baseline the roll-ups avoid.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from common import ROOT, machine, peak_rss_mib
from sqlalchemy.engine import make_url

from kiosk.db import write_transaction
from kiosk.extensions import db
from kiosk.hub.services import LEVEL_LETTERS
from tests.helpers import CSRF_META, make_app
from tests.sync.conftest import HUB_BOX_KEY, HUB_PSEUDONYM_KEY, HUB_WORKER_ARGS, HubProcess, database_url, hub_config

ZONE_NAME = "Asia/Shanghai"
TEMPLATE = "bench_hub_template"
EVENT_COLUMNS = ("centre_id", "seq", "event_id", "type", "schema_version", "occurred_at", "day", "received_at", "person", "payload", "payload_hash")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---- PostgreSQL databases ----


def admin(url: str) -> psycopg.Connection:
    parsed = make_url(url)
    return psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, dbname="postgres", autocommit=True)


def connect(url: str) -> psycopg.Connection:
    parsed = make_url(url)
    return psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True)


def build_template(pg: str, work: Path) -> None:
    """The hub's schema by its migrations on PostgreSQL, plus Xihu's centres and demo logins."""
    from flask_migrate import upgrade

    from kiosk.hub import demo

    with admin(pg) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    app = make_app(work / "template", **hub_config(database_url(pg, TEMPLATE)))
    with app.app_context():
        upgrade()
        demo.load(db.session)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def fresh_database(pg: str, name: str) -> str:
    with admin(pg) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return database_url(pg, name)


@contextlib.contextmanager
def hub_app(url: str, work: Path):
    app = make_app(work / f"hub-app-{uuid.uuid4().hex[:6]}", **hub_config(url))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def add_centres(url: str, work: Path, codes: list[str], parents: list[str]) -> None:
    from kiosk.centres.models import CentreLevel
    from kiosk.centres.services import CentreSpec, upsert_centres

    with hub_app(url, work):
        upsert_centres(db.session, [CentreSpec(code, f"基准测试社区{code}", CentreLevel.COMMUNITY, parents[i % len(parents)]) for i, code in enumerate(codes)])
        db.session.commit()


def issue_keys(url: str, work: Path, codes: list[str]) -> dict[str, tuple[str, str]]:
    """Enrol centres directly on the hub (the enrolment HTTP call is covered by the tests)."""
    from kiosk.hub import services

    keys = {}
    with hub_app(url, work):
        for code in codes:
            enrolment = services.create_enrolment(db.session, code, created_by="bench")
            with write_transaction(db.session):
                issued = services.enrol(db.session, enrolment)
            keys[code] = (issued.key_id, issued.secret)
    return keys


@contextlib.contextmanager
def running_hub(url: str, instance: Path, workers: int, worker_args: tuple[str, ...] = HUB_WORKER_ARGS):
    """The hub under gunicorn as deployed (gthread workers); ``worker_args=()``: gunicorn's default
    sync workers, which close every connection (the hub before keep-alive, for comparison)."""
    extra = {"GUNICORN_CMD_ARGS": f"--access-logfile {instance / 'access.log'} --timeout 120"}
    hub = HubProcess(url, instance, workers=workers, extra_env=extra, worker_args=worker_args)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def hub_worker_rss(hub: HubProcess) -> tuple[float, float]:
    """(peak RSS of the largest worker, of the master) in MiB."""
    assert hub.process is not None
    master = hub.process.pid
    children = [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    return max((peak_rss_mib(pid) for pid in children), default=float("nan")), peak_rss_mib(master)


def access_statuses(hub: HubProcess) -> dict[str, int]:
    counts: dict[str, int] = {}
    log = hub.instance / "access.log"
    if log.exists():
        for match in re.finditer(r'" (\d{3}) ', log.read_text(errors="replace")):
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


# ---- kiosks ----


def kiosk_template(work: Path) -> Path:
    from flask_migrate import upgrade

    path = work / "kiosk-template"
    path.mkdir(parents=True, exist_ok=True)
    app = make_app(path)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return path / "kiosk.sqlite3"


def new_kiosk(template: Path, instance: Path, hub_url: str, centre: str, key: tuple[str, str]) -> Path:
    from tests.helpers import copy_database

    instance.mkdir(parents=True, exist_ok=True)
    database = instance / "kiosk.sqlite3"
    copy_database(template, database)
    public = _public_key()
    with sqlite3.connect(database) as conn:
        conn.execute(
            "INSERT INTO sync_state (id, hub_url, centre_code, key_id, key_secret, hub_public_key, acked_seq, pull_cursor, last_error, enrolled_at)"
            " VALUES (1, ?, ?, ?, ?, ?, 0, 0, '', ?)",
            (hub_url, centre, key[0], key[1], public, datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")),
        )
    return database


def _public_key() -> str:
    from kiosk.sync.protocol import public_key_of

    return public_key_of(HUB_BOX_KEY)


def wire_events(count: int, *, start: datetime, people: int = 800, seed: int = 1) -> list[dict]:
    """Events as an enrolled kiosk writes them: check-ins (phone sealed to the hub with
    kiosk.sync.protocol.seal, which check_in, outbox.person_field and the send-time sealing all
    call: once per person and hub key in a kiosk process), points, bookings; one every ~43 s
    (60,000 = 30 days). Each call is one kiosk process: its seals are its own."""
    from kiosk.sync.protocol import forget_seals, seal

    forget_seals()
    rng = random.Random(seed)
    public = _public_key()
    step = timedelta(days=30) / 60_000
    events = []
    for i in range(count):
        kind = rng.random()
        if kind < 0.7:
            type_, payload = "checkin.created", {"checkin_id": i + 1, "activity_id": 1 + i % 40, "category": "culture", "method": "kiosk_phone", "points": 5}
            payload["person_sealed"] = seal(public, f"139{rng.randrange(people):08d}")
        elif kind < 0.85:
            type_, payload = "booking.created", {"booking_id": i + 1, "service_id": 1 + i % 6, "slot": (start + step * i).isoformat()}
        elif kind < 0.95:
            type_, payload = "points.redeemed", {"redemption_id": i + 1, "points": -20, "reward": "环保袋"}
        else:
            type_, payload = "catalogue.loan", {"day": (start + step * i).date().isoformat(), "class": "I"}
        events.append(
            {"seq": i + 1, "event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1, "occurred_at": (start + step * i).isoformat(), "payload": payload}
        )
    return events


def fill_outbox(database: Path, events: list[dict]) -> None:
    rows = [
        (
            e["seq"],
            e["event_id"],
            e["type"],
            e["schema_version"],
            datetime.fromisoformat(e["occurred_at"]).strftime("%Y-%m-%d %H:%M:%S.%f"),
            json.dumps(e["payload"]),
        )
        for e in events
    ]
    with sqlite3.connect(database) as conn:
        conn.executemany("INSERT INTO outbox_event (id, event_id, type, schema_version, occurred_at, payload) VALUES (?, ?, ?, ?, ?, ?)", rows)


def outbox_size(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT count(*) FROM outbox_event").fetchone()[0]


def kiosk_env(instance: Path) -> dict[str, str]:
    from tests.helpers import TEST_SECRET, TEST_SIGNING_KEY

    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    return env | {"KIOSK_INSTANCE_PATH": str(instance), "KIOSK_SECRET_KEY": TEST_SECRET, "KIOSK_SIGNING_KEY": TEST_SIGNING_KEY}


def exactly_once(conn: psycopg.Connection, codes: list[str]) -> dict[str, tuple[int, int, int, int, int]]:
    """Per centre: (rows, distinct event_ids, min seq, max seq, acked_seq)."""
    rows = conn.execute(
        """SELECT c.code, count(e.id), count(DISTINCT e.event_id), coalesce(min(e.seq), 0), coalesce(max(e.seq), 0), coalesce(h.acked_seq, 0)
           FROM centre c LEFT JOIN hub_event e ON e.centre_id = c.id LEFT JOIN hub_centre h ON h.centre_id = c.id
           WHERE c.code = ANY(%s) GROUP BY c.code, h.acked_seq""",
        (codes,),
    ).fetchall()
    return {code: tuple(rest) for code, *rest in rows}


# ---- 1. ingest ----


def part_ingest(pg: str, work: Path, events_count: int, workers: int, repeat: int, parallel: int, compare_sync_worker: bool = False) -> dict:
    """Each repetition: COPY, executemany, the API with one kiosk, the API with ``parallel``
    kiosks at once, each into a fresh database; medians (and ranges) over the repetitions, the
    ratios taken per repetition."""
    from kiosk.hub import services
    from kiosk.sync import protocol

    events = wire_events(events_count, start=datetime(2026, 10, 1, tzinfo=UTC))
    batches = [events[i : i + protocol.MAX_BATCH_EVENTS] for i in range(0, len(events), protocol.MAX_BATCH_EVENTS)]
    bodies = [protocol.encode_batch(batch) for batch in batches]
    result: dict = {"events": events_count, "batches": len(bodies), "repeat": repeat, "parallel": parallel, "load_before": load()}

    # The rows exactly as the hub stores them (sealed phones opened with the hub's key).
    secrets = services.secrets_from_config({"HUB_BOX_KEY": HUB_BOX_KEY, "HUB_PSEUDONYM_KEY": HUB_PSEUDONYM_KEY, "TIMEZONE": ZONE_NAME})
    started = time.perf_counter()
    cleaned = [row for batch in batches for row in services._clean_events(batch, secrets)]
    result["clean_only_eps"] = events_count / (time.perf_counter() - started)  # validation + opening 70 % sealed phones
    received = datetime.now(UTC)
    runs: dict[str, list[float]] = {"copy": [], "executemany": [], "api": [], "api_parallel": [], "drain_s": [], "api_rolled_up": [], "rollup": []}
    if compare_sync_worker:
        runs |= {"api_sync_worker": [], "api_parallel_sync_worker": []}
    codes = ["XH-CY-CY1", "XH-GD-JH", "XH-SP-WJC", "XH-ZT-CDC", "XH-LY-HLSQ", "XH-ZT-YCXZ", "XH-ZHPG", "XH-CY"][: max(parallel, 1)]
    for round_ in range(repeat):
        url_copy, url_many = fresh_database(pg, "bench_copy"), fresh_database(pg, "bench_many")
        centre_id = connect(url_copy).execute("SELECT id FROM centre WHERE code = 'XH-CY-CY1'").fetchone()[0]
        tuples = [
            (
                centre_id,
                r["seq"],
                r["event_id"],
                r["type"],
                r["schema_version"],
                r["occurred_at"],
                r["day"],
                received,
                r["person"],
                json.dumps(r["payload"]),
                r["payload_hash"],
            )
            for r in cleaned
        ]
        with connect(url_copy) as conn:
            started = time.perf_counter()
            with conn.cursor() as cur, cur.copy(f"COPY hub_event ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                for row in tuples:
                    copy.write_row(row)
            runs["copy"].append(events_count / (time.perf_counter() - started))
        with connect(url_many) as conn:
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                placeholders = ", ".join(["%s"] * len(EVENT_COLUMNS))
                cur.executemany(f"INSERT INTO hub_event ({', '.join(EVENT_COLUMNS)}) VALUES ({placeholders})", tuples)
            runs["executemany"].append(events_count / (time.perf_counter() - started))
        url_api = fresh_database(pg, "bench_api")
        keys = issue_keys(url_api, work, codes)
        with running_hub(url_api, work / f"hub-ingest-{round_}", workers) as hub:
            _warm(hub, keys, codes, bodies[0])
            _reset(url_api)
            # One kiosk's batches, one after the other, as `kiosk sync` sends them.
            pushed = _push(hub, keys, codes[:1], bodies)
            runs["api"].append(events_count / pushed)
            # The roll-ups follow the push off the request (kiosk.hub.rollup): how long after the
            # last answer the queue is empty, then the same roll-ups alone, timed in process.
            drain = _drain(url_api)
            runs["drain_s"].append(drain)
            runs["api_rolled_up"].append(events_count / (pushed + drain))
            with connect(url_api) as conn:
                assert exactly_once(conn, codes[:1])[codes[0]] == (events_count, events_count, 1, events_count, events_count)
            _reset(url_api)
            # ``parallel`` kiosks at once (a thread each, its own centre), the same events split
            # between them: what the hub's workers take in the nightly window.
            share = len(bodies) // len(codes)
            seconds = _push(hub, keys, codes, bodies, share=share)
            runs["api_parallel"].append(share * len(codes) * protocol.MAX_BATCH_EVENTS / seconds)
            result["hub_rss_worker_mib"], result["hub_rss_master_mib"] = hub_worker_rss(hub)
            result["statuses"] = access_statuses(hub)
        if compare_sync_worker:
            # The same pushes to the hub under gunicorn's sync workers (a connection per request),
            # in the same round: the figure before keep-alive, at this moment's load.
            _clear(url_api)
            with running_hub(url_api, work / f"hub-ingest-sync-{round_}", workers, worker_args=()) as hub:
                _warm(hub, keys, codes, bodies[0])
                _reset(url_api)
                runs["api_sync_worker"].append(events_count / _push(hub, keys, codes[:1], bodies))
                _reset(url_api)
                runs["api_parallel_sync_worker"].append(share * len(codes) * protocol.MAX_BATCH_EVENTS / _push(hub, keys, codes, bodies, share=share))
                _drain(url_api)  # the same events as the first hub's run stay for the roll-up alone
        # After the hub stopped (its workers' roll-ups would take part of the queue).
        runs["rollup"].append(_rollup_alone(url_api, work))
        print(f"  round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in runs.items()), flush=True)
    for key, values in runs.items():
        result[f"{key}_eps"], result[f"{key}_min"], result[f"{key}_max"] = statistics.median(values), min(values), max(values)
    for key in ("api", "api_parallel", "api_rolled_up", "api_sync_worker", "api_parallel_sync_worker"):
        if key not in runs:
            continue
        result[f"{key}_to_executemany"] = statistics.median(a / m for a, m in zip(runs[key], runs["executemany"], strict=True))
        result[f"{key}_to_copy"] = statistics.median(a / c for a, c in zip(runs[key], runs["copy"], strict=True))
    result["load_after"] = load()
    return result


def _warm(hub: HubProcess, keys: dict, codes: list[str], body: bytes) -> None:
    """One push per worker process and centre (imports, connection pool, temporary table)."""
    from kiosk.sync.client import HubClient

    for code in codes:
        for _ in range(2):
            HubClient(hub.url, *keys[code], app_version="bench").push(body)


def _reset(url: str) -> None:
    """Forget every pushed event and what ingest kept of it (the centres and keys stay), once
    the hub's roll-ups are done (a TRUNCATE under a running roll-up deadlocks with it)."""
    _drain(url)
    _clear(url)


def _clear(url: str) -> None:
    """_reset with the hub stopped (nothing would empty the queue: no waiting for it)."""
    with connect(url) as conn:
        conn.execute("TRUNCATE hub_event, hub_daily, hub_monthly, hub_person_day, hub_people, hub_people_count, hub_conflict, hub_rollup_queue")
        conn.execute("UPDATE hub_centre SET acked_seq = 0")


def _drain(url: str) -> float:
    """Seconds until the hub's background roll-up has emptied the queue."""
    started = time.perf_counter()
    with connect(url) as conn:
        while conn.execute("SELECT count(*) FROM hub_rollup_queue").fetchone()[0]:
            time.sleep(0.005)
    return time.perf_counter() - started


def _rollup_alone(url: str, work: Path) -> float:
    """Events/s of `kiosk hub rollup` (rollup.catch_up, in this process, the hub stopped) over
    every event the hub holds (the last run's) queued again in batches of 500, the roll-ups
    emptied first."""
    from kiosk.hub import rollup

    with connect(url) as conn:
        (events_count,) = conn.execute("SELECT count(*) FROM hub_event").fetchone()
        conn.execute("TRUNCATE hub_daily, hub_monthly, hub_person_day, hub_people, hub_people_count, hub_rollup_queue")
        conn.execute(
            "INSERT INTO hub_rollup_queue (centre_id, first_id, last_id, events, queued_at)"
            " SELECT centre_id, min(id), max(id), count(*), now() FROM (SELECT centre_id, id, (row_number() OVER (ORDER BY id) - 1) / 500 AS b FROM hub_event) x"
            " GROUP BY centre_id, b"
        )
    with hub_app(url, work):
        started = time.perf_counter()
        done = rollup.catch_up(db.session)
        seconds = time.perf_counter() - started
    assert done.events == events_count, done
    return events_count / seconds


def _push(hub: HubProcess, keys: dict, codes: list[str], bodies: list[bytes], share: int | None = None) -> float:
    """Seconds for each centre in ``codes`` to push ``bodies[:share]`` in order, all at once."""
    from kiosk.sync.client import HubClient

    errors: list[str] = []

    def send(code: str) -> None:
        client = HubClient(hub.url, *keys[code], app_version="bench")
        for body in bodies[:share]:
            answer = client.push(body)
            if answer.status != 200:
                errors.append(f"{code}: {answer.status} {answer.data}")

    threads = [threading.Thread(target=send, args=(code,)) for code in codes]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    assert not errors, errors[:3]
    return seconds


# ---- 2. catch-up ----


def run_cli(instance: Path, *args: str) -> tuple[int, str, str, float, float]:
    """(exit code, stdout, stderr, seconds, peak RSS MiB) of `kiosk ARGS` in its own process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "kiosk.cli", *args], env=kiosk_env(instance), cwd=ROOT, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        return process.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"), seconds, usage.ru_maxrss / 1024


def part_catchup(pg: str, work: Path, events_count: int, workers: int) -> dict:
    url = fresh_database(pg, "bench_catchup")
    key = issue_keys(url, work, ["XH-CY-CY1"])["XH-CY-CY1"]
    template = kiosk_template(work)
    result: dict = {"events": events_count, "load_before": load()}
    with running_hub(url, work / "hub-catchup", workers) as hub:
        instance = work / "kiosk-catchup"
        database = new_kiosk(template, instance, hub.url, "XH-CY-CY1", key)
        fill_outbox(database, wire_events(events_count, start=datetime(2026, 10, 1, tzinfo=UTC), seed=2))
        code, out, err, seconds, rss = run_cli(instance, "sync")
        assert code == 0, err[-2000:]
        result |= {"seconds": seconds, "kiosk_rss_mib": rss, "eps": events_count / seconds, "output": out.strip()}
        result["hub_rss_worker_mib"], result["hub_rss_master_mib"] = hub_worker_rss(hub)
        sent = outbox_size(database)  # the nightly hooks (catalogue daily counts) added theirs
        with connect(url) as conn:
            result["exactly_once"] = exactly_once(conn, ["XH-CY-CY1"])["XH-CY-CY1"] == (sent, sent, 1, sent, sent)
        result["statuses"] = access_statuses(hub)
    result["load_after"] = load()
    return result


# ---- 3. fleet ----


def part_fleet(pg: str, work: Path, kiosks: int, per_kiosk: int, workers: int) -> dict:
    url = fresh_database(pg, "bench_fleet")
    codes = [f"BENCH-F{i:03d}" for i in range(1, kiosks + 1)]
    add_centres(url, work, codes, ["XH-CY", "XH-GD", "XH-LY", "XH-XX"])
    keys = issue_keys(url, work, codes)
    template = kiosk_template(work)
    result: dict = {"kiosks": kiosks, "per_kiosk": per_kiosk, "workers": workers, "load_before": load()}
    with running_hub(url, work / "hub-fleet", workers) as hub:
        instances, databases = [], {}
        for i, code in enumerate(codes):
            instance = work / f"fleet-{code}"
            database = new_kiosk(template, instance, hub.url, code, keys[code])
            fill_outbox(database, wire_events(per_kiosk, start=datetime(2026, 11, 27, 16, tzinfo=UTC), seed=100 + i))
            instances.append(instance)
            databases[code] = database
        started = time.perf_counter()
        processes = [
            subprocess.Popen([sys.executable, "-m", "kiosk.cli", "sync"], env=kiosk_env(p), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for p in instances
        ]
        outputs = [p.communicate(timeout=1800) for p in processes]
        result["seconds"] = time.perf_counter() - started
        result["failed_runs"] = sum(1 for p in processes if p.returncode != 0)
        result["retries"] = sum(int(m.group(1)) for _out, err in outputs for m in re.finditer(r"(\d+) (?:次|times)", err))
        result["stderr_samples"] = [err.strip()[-300:] for _out, err in outputs if err.strip()][:3]
        statuses = access_statuses(hub)
        result["statuses"] = statuses
        result["http_5xx"] = sum(n for status, n in statuses.items() if status.startswith("5"))
        result["hub_rss_worker_mib"], result["hub_rss_master_mib"] = hub_worker_rss(hub)
    with connect(url) as conn:
        held = exactly_once(conn, codes)
    sizes = {code: outbox_size(databases[code]) for code in codes}
    result["exactly_once_centres"] = sum(1 for code in codes if held.get(code) == (sizes[code], sizes[code], 1, sizes[code], sizes[code]))
    result["eps"] = kiosks * per_kiosk / result["seconds"]
    result["load_after"] = load()
    return result


# ---- 4. dashboard ----

TYPE_MIX = (
    ("checkin.created", 0.70, 5),
    ("checkin.undone", 0.01, -5),
    ("booking.created", 0.08, 0),
    ("booking.served", 0.06, 0),
    ("booking.no_show", 0.01, 0),
    ("points.redeemed", 0.04, -20),
    ("member.registered", 0.02, 0),
    ("volunteer.hours", 0.03, 2),
    ("catalogue.loan", 0.05, 0),
)


def seed_year(url: str, work: Path, centres: int, per_day: int, first: date, days: int) -> dict:
    """``per_day`` events a day at each of ``centres`` new community centres for ``days`` days,
    generated by PostgreSQL itself (generate_series; a COPY from Python took minutes), with the
    type mix of TYPE_MIX; check-ins by people from a pool of 1,500 per centre, a tenth of whom
    also go to other centres."""
    codes = [f"BENCH-D{i:03d}" for i in range(1, centres + 1)]
    parents = ["XH-BS", "XH-XX", "XH-LY", "XH-CY", "XH-WX", "XH-GD", "XH-XHJD", "XH-LX", "XH-ZT", "XH-JC", "XH-SP"]
    add_centres(url, work, codes, parents)
    kinds, points, bound = [], [], 0.0
    for type_, share, value in TYPE_MIX:
        bound += share
        kinds.append(f"WHEN r < {bound:.4f} THEN '{type_}'")
        points.append(f"WHEN r < {bound:.4f} THEN {value}")
    started = time.perf_counter()
    with connect(url) as conn:
        conn.execute("SELECT setseed(0.13)")
        ids = [row[0] for row in conn.execute("SELECT id FROM centre WHERE code = ANY(%s) ORDER BY id", (codes,))]
        conn.execute(
            f"""INSERT INTO hub_event ({", ".join(EVENT_COLUMNS)})
                SELECT centre_id, d * %(per_day)s + n, gen_random_uuid()::text, kind, 1, (%(first)s::date + d) + interval '2 hours',
                       %(first)s::date + d, now(), person,
                       jsonb_strip_nulls(jsonb_build_object('points', NULLIF(points, 0), 'person', person)), repeat('0', 64)
                FROM (
                    SELECT centre_id, d, n, kind, points,
                           CASE WHEN kind = 'checkin.created' THEN encode(sha256(convert_to(
                               CASE WHEN p < 150 THEN 'shared-' ELSE 'c' || centre_id || '-' END || p, 'UTF8')), 'hex') END AS person
                    FROM (
                        SELECT centre_id, d, n, (random() * 1499)::int AS p,
                               CASE {" ".join(kinds)} ELSE 'checkin.created' END AS kind,
                               CASE {" ".join(points)} ELSE 5 END AS points
                        FROM unnest(%(ids)s::int[]) AS centre_id, generate_series(0, %(days)s - 1) AS d, generate_series(1, %(per_day)s) AS n,
                             LATERAL (SELECT random() + 0 * n AS r) AS pick
                    ) typed
                ) events""",
            {"per_day": per_day, "first": first, "days": days, "ids": ids},
        )
        seeded = time.perf_counter() - started
        # The roll-ups as ingest keeps them (services._insert_events), built here in one pass.
        conn.execute(
            "INSERT INTO hub_daily (centre_id, day, type, events, points) SELECT centre_id, day, type, count(*), "
            "sum(CASE WHEN jsonb_typeof(payload->'points') = 'number' THEN (payload->>'points')::bigint ELSE 0 END) "
            "FROM hub_event WHERE centre_id = ANY(%s) GROUP BY centre_id, day, type",
            (ids,),
        )
        conn.execute(
            "INSERT INTO hub_person_day (day, centre_id, person) SELECT DISTINCT day, centre_id, person FROM hub_event "
            "WHERE type = 'checkin.created' AND person IS NOT NULL AND centre_id = ANY(%s)",
            (ids,),
        )
        # …and the month and people roll-ups (the backfill of migration 0009_hub_rollups).
        conn.execute(
            "INSERT INTO hub_monthly (centre_id, month, type, events, points) SELECT centre_id, date_trunc('month', day)::date, type, "
            "sum(events), sum(points) FROM hub_daily WHERE centre_id = ANY(%s) GROUP BY 1, 2, 3",
            (ids,),
        )
        conn.execute(
            "INSERT INTO hub_people (scope_id, kind, start, person) SELECT DISTINCT centre_id, 'm', date_trunc('month', day)::date, person "
            "FROM hub_person_day UNION SELECT DISTINCT centre_id, 'y', date_trunc('year', day)::date, person FROM hub_person_day"
        )
        conn.execute(
            "WITH RECURSIVE up (centre_id, scope_id) AS (SELECT id, id FROM centre UNION ALL "
            "SELECT up.centre_id, c.parent_id FROM up JOIN centre c ON c.id = up.scope_id WHERE c.parent_id IS NOT NULL) "
            "INSERT INTO hub_people (scope_id, kind, start, person) SELECT DISTINCT up.scope_id, 'bm', date_trunc('month', p.day)::date, p.person "
            "FROM hub_person_day p JOIN up ON up.centre_id = p.centre_id "
            "UNION SELECT DISTINCT up.scope_id, 'by', date_trunc('year', p.day)::date, p.person FROM hub_person_day p JOIN up ON up.centre_id = p.centre_id"
        )
        # …and per branch and level of centre (the backfill of migration 0011_hub_level_people).
        letter = "CASE c.level " + " ".join(f"WHEN '{level}' THEN '{code}'" for level, code in LEVEL_LETTERS.items()) + " ELSE 'x' END"
        conn.execute(
            "WITH RECURSIVE up (centre_id, scope_id) AS (SELECT id, id FROM centre UNION ALL "
            "SELECT up.centre_id, c.parent_id FROM up JOIN centre c ON c.id = up.scope_id WHERE c.parent_id IS NOT NULL) "
            f"INSERT INTO hub_people (scope_id, kind, start, person) SELECT DISTINCT up.scope_id, 'l' || {letter} || p.kind, p.start, p.person "
            "FROM hub_people p JOIN centre c ON c.id = p.scope_id JOIN up ON up.centre_id = p.scope_id WHERE p.kind IN ('m', 'y')"
        )
        conn.execute("INSERT INTO hub_people_count (scope_id, kind, start, people) SELECT scope_id, kind, start, count(*) FROM hub_people GROUP BY 1, 2, 3")
        # Most centres synced last night; every 20th has been silent for a week.
        conn.execute(
            "INSERT INTO hub_centre (centre_id, acked_seq, last_push_at, app_version) SELECT id, 0, "
            "now() - CASE WHEN id %% 20 = 0 THEN interval '7 days' ELSE interval '8 hours' END, 'bench' FROM centre WHERE code = ANY(%s) "
            "ON CONFLICT (centre_id) DO NOTHING",
            (codes,),
        )
    # …and the day bits of kiosk.hub.people_days, filed by its catch-up as after a night's pushes.
    result = {"catchup_s": file_people_days(url, work)}
    with connect(url) as conn:
        conn.execute("VACUUM ANALYZE")
        sizes = conn.execute(
            "SELECT (SELECT count(*) FROM hub_event), (SELECT count(*) FROM hub_daily), (SELECT count(*) FROM hub_person_day), "
            "pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()
    return result | {
        "events": sizes[0],
        "seed_s": time.perf_counter() - started,
        "copy_s": seeded,
        "daily_rows": sizes[1],
        "person_day_rows": sizes[2],
        "db_size": sizes[3],
    }


def file_people_days(url: str, work: Path) -> float:
    """Seconds kiosk.hub.people_days.catch_up takes to file every uncounted hub_person_day row."""
    from kiosk.hub import people_days

    with hub_app(url, work):
        started = time.perf_counter()
        with write_transaction(db.session):
            people_days.catch_up(db.session)
        return time.perf_counter() - started


def migrate(url: str, work: Path) -> tuple[str, float]:
    """Bring a kept database to the head revision: (the revision it was at, seconds)."""
    from flask_migrate import upgrade

    with connect(url) as conn:
        before = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    with hub_app(url, work):
        started = time.perf_counter()
        upgrade()
        return before, time.perf_counter() - started


def login(base: str, username: str, password: str) -> urllib.request.OpenerDirector:
    import http.cookiejar

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    html = opener.open(base + "/district/login").read().decode()
    match = CSRF_META.search(html)
    assert match, "no CSRF token on the login page"
    data = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": match.group(1)}).encode()
    page = opener.open(base + "/district/login", data=data)
    assert "/district/login" not in page.geturl(), "login failed"
    return opener


def time_requests(opener, url: str, rounds: int) -> dict:
    opener.open(url).read()  # warm-up
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = opener.open(url)
        body = response.read()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status == 200 and len(body) > 1000
    return {"p50_ms": statistics.median(times), "p95_ms": percentile(times, 95), "max_ms": max(times), "bytes": len(body)}


def part_dashboard(pg: str, work: Path, centres: int, per_day: int, rounds: int, workers: int, reuse: bool = False) -> dict:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=365)
    result: dict = {"centres": centres, "per_day": per_day, "load_before": load()}
    with admin(pg) as conn:
        kept = reuse and conn.execute("SELECT 1 FROM pg_database WHERE datname = 'bench_dashboard'").fetchone() is not None
    if kept:  # --reuse on a kept cluster: the year seeded by an earlier run
        url = database_url(pg, "bench_dashboard")
        result["migrated_from"], result["migrate_s"] = migrate(url, work)
        with connect(url) as conn:
            result |= {
                "events": conn.execute("SELECT count(*) FROM hub_event").fetchone()[0],
                "seed_s": 0,
                "copy_s": 0,
                "daily_rows": "?",
                "person_day_rows": "?",
                "db_size": "?",
            }
    else:
        url = fresh_database(pg, "bench_dashboard")
        result |= seed_year(url, work, centres, per_day, first, 365)
    year = f"period=custom&from={first.isoformat()}&to={(today - timedelta(days=1)).isoformat()}"
    last_90 = f"period=custom&from={(today - timedelta(days=90)).isoformat()}&to={(today - timedelta(days=1)).isoformat()}"
    last_30 = f"period=custom&from={(today - timedelta(days=30)).isoformat()}&to={(today - timedelta(days=1)).isoformat()}"
    with running_hub(url, work / "hub-dashboard", workers) as hub:
        opener = login(hub.url, "district", "district-demo-1")
        result["year"] = time_requests(opener, f"{hub.url}/district/?period=year", rounds)
        result["month"] = time_requests(opener, f"{hub.url}/district/?period=month", rounds)
        result["year_community"] = time_requests(opener, f"{hub.url}/district/?period=year&level=community", rounds)
        result["month_community"] = time_requests(opener, f"{hub.url}/district/?period=month&level=community", rounds)
        result["week"] = time_requests(opener, f"{hub.url}/district/?period=week", rounds)
        result["day"] = time_requests(opener, f"{hub.url}/district/?period=day", rounds)
        sub = login(hub.url, "cuiyuan", "cuiyuan-demo-1")
        result["year_subdistrict_user"] = time_requests(sub, f"{hub.url}/district/?period=year", rounds)
        result["year_csv"] = time_requests(opener, f"{hub.url}/district/export.csv?period=year", max(3, rounds // 5))
        result["last_365_days"] = time_requests(opener, f"{hub.url}/district/?{year}", max(3, rounds // 5))
        result["last_365_days_community"] = time_requests(opener, f"{hub.url}/district/?{year}&level=community", max(3, rounds // 5))
        result["last_365_days_subdistrict_user"] = time_requests(sub, f"{hub.url}/district/?{year}", max(3, rounds // 5))
        result["last_90_days"] = time_requests(opener, f"{hub.url}/district/?{last_90}", max(3, rounds // 5))
        result["last_30_days"] = time_requests(opener, f"{hub.url}/district/?{last_30}", max(3, rounds // 5))
        result["last_30_days_community"] = time_requests(opener, f"{hub.url}/district/?{last_30}&level=community", max(3, rounds // 5))
    # Baseline: the same figures straight from the events (what the roll-ups avoid).
    with connect(url) as conn:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            conn.execute("SELECT centre_id, type, count(*) FROM hub_event WHERE day >= %s AND day < %s GROUP BY centre_id, type", (first, today)).fetchall()
            conn.execute(
                "SELECT centre_id, count(DISTINCT person) FROM hub_event WHERE type = 'checkin.created' AND day >= %s AND day < %s GROUP BY centre_id",
                (first, today),
            ).fetchall()
            timings.append((time.perf_counter() - started) * 1000)
        result["from_events_ms"] = statistics.median(timings)
    result["load_after"] = load()
    return result


# ---- report ----


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["all", "ingest", "catchup", "fleet", "dashboard"], default="all")
    parser.add_argument("--ingest-events", type=int, default=50_000)
    parser.add_argument("--catchup-events", type=int, default=60_000)
    parser.add_argument("--kiosks", type=int, default=50)
    parser.add_argument("--kiosk-events", type=int, default=1_000, help="events in each fleet kiosk's outbox (a busy night)")
    parser.add_argument("--centres", type=int, default=200)
    parser.add_argument("--per-day", type=int, default=40, help="events per centre per day in the dashboard's year")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers of the hub")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of the ingest measurements")
    parser.add_argument("--parallel", type=int, default=4, help="kiosks pushing at once in the ingest part")
    parser.add_argument("--compare-sync-worker", action="store_true", help="ingest: also push to the hub under gunicorn's sync workers in each round")
    parser.add_argument("--reuse", action="store_true", help="dashboard: keep a year seeded earlier in the same cluster (scripts/postgres.sh start DIR)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    pg = os.environ.get("TEST_POSTGRES_URL")
    if not pg:
        sys.exit("needs PostgreSQL: make bench-sync (or: bash scripts/postgres.sh run .venv/bin/python bench/sync.py)")
    print(f"Machine: {machine()}; load average at start {load()}", flush=True)
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-sync.") as tmp:
        work = Path(tmp)
        build_template(pg, work)
        parts = ["ingest", "catchup", "fleet", "dashboard"] if args.part == "all" else [args.part]
        for part in parts:
            print(f"\n== {part} ==", flush=True)
            if part == "ingest":
                r = figures["ingest"] = part_ingest(pg, work, args.ingest_events, args.workers, args.repeat, args.parallel, args.compare_sync_worker)
                print(
                    f"{r['events']} events in {r['batches']} batches of <= 500, medians of {r['repeat']} (load {r['load_before']} -> {r['load_after']})\n"
                    f"  COPY                     {r['copy_eps']:7.0f} events/s ({r['copy_min']:.0f}-{r['copy_max']:.0f})\n"
                    f"  executemany              {r['executemany_eps']:7.0f} events/s ({r['executemany_min']:.0f}-{r['executemany_max']:.0f})\n"
                    f"  hub API, 1 kiosk         {r['api_eps']:7.0f} events/s ({r['api_min']:.0f}-{r['api_max']:.0f}) = "
                    f"{r['api_to_executemany']:.0%} of executemany, {r['api_to_copy']:.0%} of COPY\n"
                    f"  hub API, {r['parallel']} kiosks at once {r['api_parallel_eps']:7.0f} events/s ({r['api_parallel_min']:.0f}-{r['api_parallel_max']:.0f}) = "
                    f"{r['api_parallel_to_executemany']:.0%} of executemany, {r['api_parallel_to_copy']:.0%} of COPY\n"
                    f"  roll-ups after 1 kiosk's push: queue empty {r['drain_s_eps']:.2f} s after the last answer; pushed and rolled up "
                    f"{r['api_rolled_up_eps']:7.0f} events/s = {r['api_rolled_up_to_executemany']:.0%} of executemany\n"
                    f"  roll-up alone (`kiosk hub rollup` of the pushed events queued again): {r['rollup_eps']:.0f} events/s ({r['rollup_min']:.0f}-{r['rollup_max']:.0f})\n"
                    f"  (validation + opening sealed phones alone, one process: {r['clean_only_eps']:.0f} events/s)\n"
                    f"  hub peak RSS: worker {r['hub_rss_worker_mib']:.0f} MiB, master {r['hub_rss_master_mib']:.0f} MiB; statuses {r['statuses']}",
                    flush=True,
                )
                if "api_sync_worker_eps" in r:
                    print(
                        f"  same rounds, hub under gunicorn's sync workers (a connection per request):\n"
                        f"    1 kiosk  {r['api_sync_worker_eps']:7.0f} events/s ({r['api_sync_worker_min']:.0f}-{r['api_sync_worker_max']:.0f}) = "
                        f"{r['api_sync_worker_to_executemany']:.0%} of executemany\n"
                        f"    {r['parallel']} kiosks {r['api_parallel_sync_worker_eps']:7.0f} events/s ({r['api_parallel_sync_worker_min']:.0f}-"
                        f"{r['api_parallel_sync_worker_max']:.0f}) = {r['api_parallel_sync_worker_to_executemany']:.0%} of executemany",
                        flush=True,
                    )
            elif part == "catchup":
                r = figures["catchup"] = part_catchup(pg, work, args.catchup_events, args.workers)
                print(
                    f"{r['events']} events (30 days offline), one `kiosk sync`: {r['seconds']:.1f} s = {r['eps']:.0f} events/s end to end; "
                    f"exactly once: {r['exactly_once']} (load {r['load_before']} -> {r['load_after']})\n"
                    f"  peak RSS: kiosk {r['kiosk_rss_mib']:.0f} MiB, hub worker {r['hub_rss_worker_mib']:.0f} MiB, master {r['hub_rss_master_mib']:.0f} MiB\n"
                    f"  HTTP statuses at the hub: {r['statuses']}\n  kiosk said: {r['output']}",
                    flush=True,
                )
            elif part == "fleet":
                r = figures["fleet"] = part_fleet(pg, work, args.kiosks, args.kiosk_events, args.workers)
                print(
                    f"{r['kiosks']} kiosks x {r['per_kiosk']} events at once, hub with {r['workers']} workers: {r['seconds']:.1f} s "
                    f"({r['eps']:.0f} events/s overall; load {r['load_before']} -> {r['load_after']})\n"
                    f"  failed runs {r['failed_runs']}, retries {r['retries']}, 5xx {r['http_5xx']}, statuses {r['statuses']}\n"
                    f"  exactly once, no gaps: {r['exactly_once_centres']}/{r['kiosks']} centres\n"
                    f"  hub peak RSS: worker {r['hub_rss_worker_mib']:.0f} MiB, master {r['hub_rss_master_mib']:.0f} MiB"
                    + (f"\n  stderr: {r['stderr_samples']}" if r["stderr_samples"] else ""),
                    flush=True,
                )
            else:
                r = figures["dashboard"] = part_dashboard(pg, work, args.centres, args.per_day, args.rounds, args.workers, args.reuse)
                print(
                    f"{r['centres']} centres x 365 days x {r['per_day']} events/day = {r['events']} events seeded in {r['seed_s']:.0f} s "
                    f"(events {r['copy_s']:.0f} s; people_days catch-up {r.get('catchup_s', 0):.1f} s); hub_daily {r['daily_rows']} rows, "
                    f"hub_person_day {r['person_day_rows']} rows, database {r['db_size']}\n"
                    + (f"  kept database migrated from {r['migrated_from']} in {r['migrate_s']:.1f} s\n" if "migrate_s" in r else "")
                    + f"  load {r['load_before']} -> {r['load_after']}",
                    flush=True,
                )
                for key in (
                    "year",
                    "month",
                    "week",
                    "day",
                    "year_community",
                    "month_community",
                    "year_subdistrict_user",
                    "year_csv",
                    "last_30_days",
                    "last_30_days_community",
                    "last_90_days",
                    "last_365_days",
                    "last_365_days_community",
                    "last_365_days_subdistrict_user",
                ):
                    t = r[key]
                    print(f"  GET /district/ {key:30} p50 {t['p50_ms']:7.1f} ms  p95 {t['p95_ms']:7.1f} ms  max {t['max_ms']:7.1f} ms", flush=True)
                print(f"  baseline: the year's figures straight from hub_event (two aggregates): {r['from_events_ms']:.0f} ms", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
