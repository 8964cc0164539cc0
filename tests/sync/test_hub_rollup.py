"""Roll-ups off the push (kiosk.hub.rollup) on PostgreSQL: applied exactly once when two workers
race, nothing applied or lost when the hub is killed mid roll-up, every acknowledged event in the
dashboard right after a push, and erasures exact with batches still queued."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kiosk.db import write_transaction
from kiosk.extensions import db
from kiosk.hub import rollup, services
from kiosk.hub.models import HubKey
from kiosk.sync.protocol import seal
from tests.helpers import at_once, csrf_token, make_app
from tests.sync.conftest import HUB_PUBLIC_KEY, HubProcess, create_database, hub_config
from tests.sync.helpers import enrol, enrolment_code, fill_outbox, hub_cli, rollups_and_recount

ZONE = ZoneInfo("Asia/Shanghai")
# Points as a kiosk might send them: only JSON integers count (services._points).
POINTS = [5, -20, 5.0, "5", True, 1e100, None, 10**9, 0, 1e-05]


def _key(code: str) -> HubKey:
    enrolment = services.create_enrolment(db.session, code)
    with write_transaction(db.session):
        issued = services.enrol(db.session, enrolment)
    return db.session.scalar(select(HubKey).where(HubKey.key_id == issued.key_id))


def _events(first_seq: int, count: int, phones: list[str], start: datetime, types=("checkin.created", "points.redeemed")) -> list[dict]:
    events = []
    for i in range(count):
        payload: dict = {"points": POINTS[(first_seq + i) % len(POINTS)]}
        type_ = types[i % len(types)]
        if type_ == "checkin.created":
            payload["person_sealed"] = seal(HUB_PUBLIC_KEY, phones[(first_seq + i) % len(phones)])
        events.append(
            {
                "seq": first_seq + i,
                "event_id": str(uuid.uuid4()),
                "type": type_,
                "schema_version": 1,
                "occurred_at": (start + timedelta(hours=7 * (first_seq + i))).isoformat(),
                "payload": payload,
            }
        )
    return events


def _queued(hub_sql) -> int:
    return hub_sql.execute("SELECT count(*) FROM hub_rollup_queue").fetchone()[0]


def test_two_workers_racing_roll_each_batch_up_exactly_once(hub_app, hub_sql):
    """Guards the advisory lock: without it both workers read the same queue rows and add them
    twice (shown to fail with the lock statement replaced by a no-op)."""
    hub = services.secrets_from_config(hub_app.config)
    codes = ("XH-ZT-CDC", "XH-ZT-YCXZ", "XH-CY-CY1")
    key_ids = {code: _key(code).key_id for code in codes}
    phones = [f"1390000{n:04d}" for n in range(9)]
    start = datetime(2026, 12, 20, 2, tzinfo=UTC)  # crosses into 2027
    seqs = dict.fromkeys(codes, 1)
    for round_ in range(3):
        keys = {code: db.session.scalar(select(HubKey).where(HubKey.key_id == key_ids[code])) for code in codes}
        for code in codes:
            for _batch in range(4):
                events = _events(seqs[code], 40, phones, start)
                seqs[code] += len(events)
                with write_transaction(db.session):
                    services.ingest(db.session, keys[code], events, hub)
            # A resend of 20 held events with 20 new ones (the ON CONFLICT way: 20 queued).
            fresh = _events(seqs[code], 20, phones, start)
            seqs[code] += len(fresh)
            with write_transaction(db.session):
                assert services.ingest(db.session, keys[code], events[20:] + fresh, hub).inserted == 20
        db.session.remove()
        assert _queued(hub_sql) == 15

        def roll() -> rollup.Applied:
            with hub_app.app_context():
                try:
                    return rollup.catch_up(db.session)
                finally:
                    db.session.remove()

        results = at_once([roll, roll])  # two hub workers, each its own connection
        assert sum(r.batches for r in results) == 15 and sum(r.events for r in results) == 12 * 40 + 3 * 20
        assert _queued(hub_sql) == 0
        kept, expected = rollups_and_recount(hub_sql)
        assert kept == expected, round_
    assert any(points for (_n, points) in kept["daily"].values())
    assert any(start.year == 2027 for (_s, kind, start) in kept["people"] if kind == "by")


def test_an_erasure_with_batches_still_queued_keeps_a_branch_counting_the_person_once(hub_app, hub_sql):
    """The person came to two centres of one branch in a month, both pushes still queued, then
    one centre erased them. Guards the roll-up of the centre's queue inside the erasure's push:
    without it, that centre's batch is rolled up after the relink under the erasure token, and
    the branch counts the person twice (shown to fail without it)."""
    hub = services.secrets_from_config(hub_app.config)
    when = datetime(2026, 8, 10, 2, tzinfo=UTC)
    phone = "13812345678"
    first, second = _key("XH-ZT-CDC"), _key("XH-ZT-YCXZ")
    for key in (first, second):
        with write_transaction(db.session):
            services.ingest(db.session, key, _events(1, 2, [phone], when, types=("checkin.created",)), hub)
    erased = {
        "seq": 3,
        "event_id": str(uuid.uuid4()),
        "type": "privacy.erased",
        "schema_version": 1,
        "occurred_at": (when + timedelta(days=1)).isoformat(),
        "payload": {"person_sealed": seal(HUB_PUBLIC_KEY, phone)},
    }
    with write_transaction(db.session):
        services.ingest(db.session, first, [erased], hub)
    db.session.remove()
    queued = _queued(hub_sql)
    rollup.catch_up(db.session)
    ids = dict(hub_sql.execute("SELECT code, id FROM centre WHERE code IN ('XH', 'XH-ZT', 'XH-ZT-CDC', 'XH-ZT-YCXZ')").fetchall())
    count = {(s, k): n for s, k, n in hub_sql.execute("SELECT scope_id, kind, people FROM hub_people_count WHERE start = '2026-08-01'")}
    assert count[(ids["XH-ZT"], "bm")] == count[(ids["XH"], "bm")] == 1  # one person in the branch and the district
    assert count[(ids["XH-ZT-CDC"], "m")] == count[(ids["XH-ZT-YCXZ"], "m")] == 1
    assert queued == 1  # the other centre's push (the erasure's centre was rolled up in its push)
    pseudonym = services.secrets_from_config(hub_app.config).pseudonym(phone)
    assert hub_sql.execute("SELECT DISTINCT centre_id FROM hub_person_day WHERE person = %s", (pseudonym,)).fetchall() == [(ids["XH-ZT-YCXZ"],)]


@pytest.fixture
def slow_hub(postgres_url, hub_template, tmp_path):
    """A hub process whose background roll-up waits HUB_ROLLUP_DELAY seconds after a push."""
    hubs: list[HubProcess] = []

    def start(delay: str, database: str | None = None) -> HubProcess:
        url = database or create_database(postgres_url, hub_template)
        hub = HubProcess(url, tmp_path / f"hub{len(hubs)}", extra_env={"KIOSK_HUB_ROLLUP_DELAY": delay}).start()
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        hub.stop()


def _hub_app(hub: HubProcess, tmp_path):
    return make_app(tmp_path / f"in-process-{uuid.uuid4().hex[:6]}", **hub_config(hub.database_url))


def test_the_dashboard_right_after_a_push_shows_every_acknowledged_event(slow_hub, make_kiosk, hub_sql_for, tmp_path):
    """The background roll-up waits an hour here: the dashboard catches up before it reads
    (shown to fail without the catch-up at the start of kiosk.hub.dashboard.report)."""
    hub = slow_hub("3600")
    kiosk = make_kiosk()
    app = _hub_app(hub, tmp_path)
    enrol(kiosk, hub.url, enrolment_code(app, "XH-CY-CY1"))
    month = datetime.now(ZONE).replace(day=1, hour=1, minute=0, second=0, microsecond=0)  # 700 minutes from 01:00 on the 1st
    fill_outbox(kiosk, 700, phones=90, start=month.astimezone(UTC))
    assert kiosk.cli("sync", "--quiet").returncode == 0
    sql = hub_sql_for(hub.database_url)
    assert _queued(sql) == 2  # acknowledged, not yet rolled up
    client = app.test_client()
    token = csrf_token(client, "/district/login")
    assert client.post("/district/login", data={"username": "district", "password": "district-demo-1", "csrf_token": token}).status_code == 302
    html = client.get("/district/?period=month").get_data(as_text=True)
    row = next(line for line in html.split("<tr") if 'data-centre="XH-CY-CY1"' in line)
    assert "<td>700</td><td>90</td>" in row  # 700 attendances, 90 people
    assert _queued(sql) == 0
    kept, expected = rollups_and_recount(sql)
    assert kept == expected
    with app.app_context():
        db.engine.dispose()


def test_the_background_roll_up_also_files_the_people_days(slow_hub, make_kiosk, hub_sql_for, tmp_path):
    """Right after a night's push the background roll-up applies the batches and files their
    person-days into kiosk.hub.people_days, without a dashboard read (shown to fail without
    catch_up_people_days in the Roller: the rows stay uncounted until someone reads)."""
    hub = slow_hub("0")
    kiosk = make_kiosk()
    app = _hub_app(hub, tmp_path)
    enrol(kiosk, hub.url, enrolment_code(app, "XH-CY-CY1"))
    fill_outbox(kiosk, 600, phones=40)
    assert kiosk.cli("sync", "--quiet").returncode == 0
    sql = hub_sql_for(hub.database_url)
    deadline = time.monotonic() + 60  # a wait for the background thread, not a measured time
    while _queued(sql) or sql.execute("SELECT count(*) FROM hub_person_day WHERE NOT counted").fetchone()[0]:
        assert time.monotonic() < deadline, "the background roll-up left batches or person-days behind"
        time.sleep(0.05)
    assert sql.execute("SELECT count(*) FROM hub_person_day").fetchone()[0] > 0
    marked = sql.execute("SELECT sum(bit_count(bits)) FROM hub_people_bits").fetchone()[0]
    assert marked > 0
    # `kiosk hub rebuild-people-days` (after a centre moved) files the same person-days again.
    days = sql.execute("SELECT count(*) FROM hub_person_day").fetchone()[0]
    done = hub_cli(hub, "rebuild-people-days")
    assert done.returncode == 0 and f"{days} person-day(s) filed again" in done.stdout, done.stdout + done.stderr
    assert sql.execute("SELECT sum(bit_count(bits)) FROM hub_people_bits").fetchone()[0] == marked
    with app.app_context():
        db.engine.dispose()


def test_killing_the_hub_mid_roll_up_then_restarting_gives_exact_figures(slow_hub, make_kiosk, hub_sql_for, tmp_path):
    """A roll-up held mid-statement (the test locks the monthly rows it must update), the hub
    SIGKILLed: nothing of it is kept, its batches stay queued, and after a restart `kiosk hub
    rollup` brings every roll-up to exactly what the events say."""
    hub = slow_hub("0")
    kiosk = make_kiosk()
    app = _hub_app(hub, tmp_path)
    enrol(kiosk, hub.url, enrolment_code(app, "XH-CY-CY1"))
    fill_outbox(kiosk, 600)
    assert kiosk.cli("sync", "--quiet").returncode == 0
    assert hub_cli(hub, "rollup").returncode == 0
    sql = hub_sql_for(hub.database_url)
    before = rollups_and_recount(sql)
    assert before[0] == before[1] and _queued(sql) == 0
    blocker = hub_sql_for(hub.database_url)
    with blocker.transaction():
        blocker.execute("SELECT * FROM hub_monthly FOR UPDATE")
        fill_outbox(kiosk, 900)
        assert kiosk.cli("sync", "--quiet").returncode == 0  # pushes never wait for a roll-up
        deadline = time.monotonic() + 60
        while not sql.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%%hub_monthly%%' AND pid <> pg_backend_pid()"
        ).fetchone()[0]:
            assert time.monotonic() < deadline, "the background roll-up never started"
            time.sleep(0.05)
        hub.kill()
    # The roll-up's backend goes once it finds its client gone; wait for its advisory lock to go.
    deadline = time.monotonic() + 60
    while sql.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid::bigint = %s", (rollup.ROLLUP_LOCK,)).fetchone()[0]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _queued(sql) >= 2
    assert rollups_and_recount(sql)[0] == before[0]  # nothing of the killed roll-up was kept
    hub.start()
    done = hub_cli(hub, "rollup")
    assert done.returncode == 0 and "0 batch(es) pending" in done.stdout, done.stdout + done.stderr
    kept, expected = rollups_and_recount(sql)
    assert kept == expected and kept != before[0]
    assert sql.execute("SELECT count(*) FROM hub_person_day WHERE NOT counted").fetchone()[0] == 0  # filed for the custom ranges too
    with app.app_context():
        db.engine.dispose()


def test_the_acknowledged_sequence_is_the_longest_run_without_gaps(hub_app):
    """PostgreSQL computes it in the statement that locks the centre's row: the same answer as
    the run over the sorted seqs (gaps, duplicates, out of order, resends)."""
    import random

    hub = services.secrets_from_config(hub_app.config)
    key_id = _key("XH-LY-HLSQ").key_id
    rng = random.Random(5)
    acked = 0
    for _round in range(12):
        seqs = list(range(max(1, acked - 3), acked + rng.randrange(5, 40)))  # some resent
        if rng.random() < 0.4:
            seqs.remove(rng.choice(seqs))  # a gap (or a resent one left out)
        seqs += [rng.choice(seqs) for _ in range(3)]  # duplicates
        rng.shuffle(seqs)
        expected = acked
        for seq in sorted(seqs):
            if seq == expected + 1:
                expected = seq
            elif seq > expected + 1:
                break
        events = []
        for seq in seqs:
            events += _events(seq, 1, ["13900000001"], datetime(2026, 9, 1, tzinfo=UTC), types=("points.redeemed",))
        key = db.session.scalar(select(HubKey).where(HubKey.key_id == key_id))
        with write_transaction(db.session):
            assert services.ingest(db.session, key, events, hub).acked_seq == expected
        acked = expected
    assert acked > 20
