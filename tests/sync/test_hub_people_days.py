"""kiosk.hub.people_days (distinct people over any days, per-day bit strings per scope) against a
brute-force DISTINCT over hub_person_day, on PostgreSQL: random ranges, every centre, branch and
level scope, both dashboard logins and the level filter; rows that arrive late and out of order
(a transaction that committed after a catch-up had run), erasure, a centre moved in the tree."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import distinct, func, select, text

from kiosk.centres.models import Centre
from kiosk.db import write_transaction
from kiosk.extensions import db
from kiosk.hub import dashboard, people_days, services
from kiosk.hub.models import HubKey, HubPersonDay, HubUser
from kiosk.sync.protocol import seal
from tests.sync.conftest import HUB_PUBLIC_KEY

FIRST = date(2026, 3, 1)
DAYS = 70
CENTRES = ("XH", "XH-ZT", "XH-ZT-CDC", "XH-ZT-YCXZ", "XH-CY", "XH-CY-CY1", "XH-GD", "XH-GD-JH", "XH-ZHPG")


def _ids() -> dict[str, int]:
    return {code: db.session.scalar(select(Centre.id).where(Centre.code == code)) for code in CENTRES}


def _rows(rng: random.Random, count: int) -> list[tuple[date, int, str]]:
    """Person-days at the centres above: a pool per centre plus people who go everywhere."""
    ids = _ids()
    rows = set()
    while len(rows) < count:
        code = rng.choice(CENTRES)
        person = f"shared-{rng.randrange(12)}" if rng.random() < 0.3 else f"{code}-{rng.randrange(40)}"
        rows.add((FIRST + timedelta(days=rng.randrange(DAYS)), ids[code], person))
    return sorted(rows, key=lambda _r: rng.random())


def _insert(rows) -> None:
    """As an ingest (or a deferred roll-up step) writes them: ON CONFLICT DO NOTHING."""
    with write_transaction(db.session):
        db.session.execute(
            text("INSERT INTO hub_person_day (day, centre_id, person) VALUES (:day, :centre, :person) ON CONFLICT DO NOTHING"),
            [{"day": d, "centre": c, "person": p} for d, c, p in rows],
        )


def _catch_up() -> int:
    with write_transaction(db.session):
        return people_days.catch_up(db.session)


def _members() -> dict[str, set[int]]:
    """Brute force: the centres of each scope in today's tree (branches of centres with children)."""
    centres = db.session.execute(select(Centre.id, Centre.parent_id, Centre.level)).all()
    with_children = {c.parent_id for c in centres}
    found: dict[str, set[int]] = defaultdict(set)
    for centre in centres:
        found[people_days.centre_scope(centre.id)].add(centre.id)
        for scope_id in services.scopes(db.session, centre.id):
            if scope_id not in with_children:
                continue
            found[people_days.branch_scope(scope_id)].add(centre.id)
            found[people_days.branch_scope(scope_id, centre.level.value)].add(centre.id)
    return found


def _distinct(centres: set[int], start: date, end: date) -> int:
    """What the dashboard counted before the bit strings: DISTINCT person over hub_person_day."""
    if not centres:
        return 0
    return db.session.scalar(
        select(func.count(distinct(HubPersonDay.person))).where(HubPersonDay.centre_id.in_(sorted(centres)), HubPersonDay.day >= start, HubPersonDay.day < end)
    )


def _ranges(rng: random.Random, count: int) -> list[tuple[date, date]]:
    ranges = [(FIRST, FIRST + timedelta(days=DAYS)), (FIRST - timedelta(days=5), FIRST + timedelta(days=400)), (FIRST, FIRST + timedelta(days=1))]
    for _ in range(count):
        a, b = sorted(rng.sample(range(-3, DAYS + 3), 2))
        ranges.append((FIRST + timedelta(days=a), FIRST + timedelta(days=b)))
    return ranges


def _check_every_scope(rng: random.Random, ranges: int = 12) -> int:
    members = _members()
    checked = 0
    for start, end in _ranges(rng, ranges):
        for scope, centres in sorted(members.items()):
            _per, kept = people_days.count(db.session, [], scope, start, end)
            assert kept == _distinct(centres, start, end), (scope, start, end)
            checked += 1
    return checked


def _check_dashboard(rng: random.Random, ranges: int = 6, usernames: tuple[str, ...] = ("district", "cuiyuan")) -> None:
    """report() for custom ranges (not a calendar month or year) equals the brute force, per
    centre and in total, for the logins, with and without the level filter."""
    for username in usernames:
        user = db.session.scalar(select(HubUser).where(HubUser.username == username))
        for start, end in _ranges(rng, ranges):
            if dashboard._calendar_period(start, end):  # a calendar month: the counts kept at ingest
                continue
            for level in ("", "community", "village", "subdistrict"):
                shown = dashboard.report(db.session, user, start, end, level=level)
                for row in shown.rows:
                    assert row.figures.get("people", 0) == _distinct({row.centre.id}, start, end), (username, level, row.centre.code)
                expected = _distinct({row.centre.id for row in shown.rows}, start, end)
                assert shown.totals["people"] == expected, (username, level, start, end)


@pytest.fixture
def hub(hub_app):
    with write_transaction(db.session):  # each test starts from no person-days
        for table in ("hub_people_bits", "hub_people_month_bits", "hub_people_ordinal", "hub_people_centre", "hub_person_day_gone", "hub_person_day"):
            db.session.execute(text(f"DELETE FROM {table}"))
    return hub_app


def test_counts_equal_a_distinct_over_hub_person_day_for_random_ranges_and_scopes(hub):
    rng = random.Random(13)
    rows = _rows(rng, 900)
    # Rows arrive in several nights, days out of order (a kiosk offline for weeks sends old days).
    for part in range(4):
        _insert(rows[part * 225 : (part + 1) * 225])
        assert _catch_up() > 0
        assert _check_every_scope(rng, ranges=3) > 0
    assert _catch_up() == 0  # nothing left to file
    assert db.session.scalar(text("SELECT count(*) FROM hub_person_day WHERE NOT counted")) == 0
    # More people than two chunks hold at one centre: three chunks.
    many = [(FIRST + timedelta(days=i % 3), _ids()["XH-GD-JH"], f"crowd-{i}") for i in range(2 * people_days.CHUNK + 100)]
    _insert(many)
    _catch_up()
    assert db.session.scalar(text("SELECT max(chunk) FROM hub_people_bits")) >= 2
    _check_every_scope(rng)
    _check_dashboard(rng)


def test_a_transaction_that_commits_after_a_catch_up_is_still_counted(hub, hub_sql):
    """Rows of a push that began before a catch-up and committed after it (out of order with
    later pushes) are not skipped: they are filed by the next catch-up, as a serial watermark
    would not."""
    rng = random.Random(7)
    rows = _rows(rng, 200)
    slow = rows[:60]
    hub_sql.autocommit = False
    with hub_sql.cursor() as cursor:
        cursor.executemany("INSERT INTO hub_person_day (day, centre_id, person) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", slow)
        _insert(rows[60:])  # a later push commits first
        _catch_up()
        hub_sql.commit()
    hub_sql.autocommit = True
    assert db.session.scalar(text("SELECT count(*) FROM hub_person_day WHERE NOT counted")) == len(slow)
    assert _catch_up() == len(slow)
    _check_every_scope(rng)


def test_a_row_another_transaction_holds_is_left_for_the_next_catch_up(hub, hub_sql):
    """A catch-up (a dashboard request) does not wait for a row an erasure is relinking: it
    files the others and leaves that one uncounted (without SKIP LOCKED it waits, and fails on
    the lock timeout here)."""
    rng = random.Random(17)
    rows = _rows(rng, 120)
    _insert(rows)
    held = rows[0]
    hub_sql.autocommit = False
    with hub_sql.cursor() as cursor:
        cursor.execute("SELECT 1 FROM hub_person_day WHERE day = %s AND centre_id = %s AND person = %s FOR UPDATE", held)
        db.session.execute(text("SET lock_timeout = '3s'"))
        db.session.commit()
        try:
            assert _catch_up() == len(rows) - 1
        finally:
            db.session.execute(text("RESET lock_timeout"))
            db.session.commit()
        hub_sql.rollback()
    hub_sql.autocommit = True
    assert _catch_up() == 1
    _check_every_scope(rng, ranges=3)


def test_erasure_stays_exact(hub):
    """forget_erased_people relinks a person's days at one centre to a token: the person leaves
    those days of every scope unless another centre of the scope saw them that day (the trigger
    queues the old rows; without it the district total keeps the erased person and fails here)."""
    rng = random.Random(5)
    ids = _ids()
    rows = _rows(rng, 500)
    # shared-1 on the same days at two centres of 转塘's branch, and alone at 翠苑一区.
    for i in range(6):
        rows += [(FIRST + timedelta(days=i), ids["XH-ZT-CDC"], "shared-1"), (FIRST + timedelta(days=i), ids["XH-ZT-YCXZ"], "shared-1")]
        rows += [(FIRST + timedelta(days=20 + i), ids["XH-CY-CY1"], "shared-1")]
    _insert(rows)
    _catch_up()
    with write_transaction(db.session):
        services.forget_erased_people(db.session, ids["XH-ZT-CDC"], [{"person": "shared-1"}])
        services.forget_erased_people(db.session, ids["XH-CY-CY1"], [{"person": "shared-1"}, {"person": "XH-CY-CY1-3"}])
    queued = db.session.scalar(text("SELECT count(*) FROM hub_person_day_gone"))
    _catch_up()
    _check_every_scope(rng)
    _check_dashboard(rng, ranges=3)
    assert queued > 0 and db.session.scalar(text("SELECT count(*) FROM hub_person_day_gone")) == 0


def test_undone_check_ins_count_as_before(hub):
    """An undone check-in keeps its person-day (as the earlier query counted it): after check-ins
    and an undo through ingest the dashboard equals the brute force."""
    key = services.enrol(db.session, services.create_enrolment(db.session, "XH-CY-CY1"))
    hub_key = db.session.scalar(select(HubKey).where(HubKey.key_id == key.key_id))
    when = datetime(2026, 3, 10, 4, tzinfo=UTC).isoformat()
    events = []
    for seq, (type_, phone) in enumerate((("checkin.created", "13800000011"), ("checkin.created", "13800000012"), ("checkin.undone", "13800000012")), 1):
        payload = {"points": 5 if type_ == "checkin.created" else -5, "person_sealed": seal(HUB_PUBLIC_KEY, phone)}
        events.append({"seq": seq, "event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1, "occurred_at": when, "payload": payload})
    services.ingest(db.session, hub_key, events, services.secrets_from_config(hub.config))
    db.session.commit()
    user = db.session.scalar(select(HubUser).where(HubUser.username == "cuiyuan"))
    shown = dashboard.report(db.session, user, date(2026, 3, 9), date(2026, 3, 12))
    assert shown.totals["people"] == 2 and shown.totals["attendances"] == 1
    _check_dashboard(random.Random(3), ranges=2)
    assert db.session.scalar(text("SELECT count(*) FROM hub_person_day WHERE NOT counted")) == 0  # the dashboard caught up


def test_a_centre_moved_to_another_branch_falls_back_until_rebuilt(hub):
    """Days filed under a centre's old branch would count it in the wrong sub-district: the
    dashboard counts totals from hub_person_day while the tree differs from what was filed, and
    rebuild() files everything under the new tree."""
    rng = random.Random(11)
    _insert(_rows(rng, 400))
    _catch_up()
    ids = _ids()
    assert not people_days.stale(db.session)
    with write_transaction(db.session):
        for username, code in (("zhuantang", "XH-ZT"), ("gudang", "XH-GD")):
            if db.session.scalar(select(HubUser).where(HubUser.username == username)) is None:
                dashboard.create_user(db.session, username, f"{username}-demo-1", "subdistrict", code)
        db.session.get(Centre, ids["XH-GD-JH"]).parent_id = ids["XH-ZT"]  # 蒋村 into 转塘's branch
    logins = ("district", "zhuantang", "gudang")
    try:
        assert people_days.stale(db.session)
        _check_dashboard(rng, ranges=3, usernames=logins)
        with write_transaction(db.session):
            assert people_days.rebuild(db.session) == 400
        assert not people_days.stale(db.session)
        _check_every_scope(rng, ranges=4)
        _check_dashboard(rng, ranges=3, usernames=logins)
    finally:
        with write_transaction(db.session):
            db.session.get(Centre, ids["XH-GD-JH"]).parent_id = ids["XH-GD"]


def test_a_sqlite_demo_hub_counts_from_hub_person_day(instance_path):
    """No bit strings on SQLite (`make run-hub`): catch_up does nothing and custom ranges count
    hub_person_day as before, per centre and in total."""
    from kiosk.hub import demo
    from tests.helpers import make_app
    from tests.sync.conftest import HUB_BOX_KEY, HUB_PSEUDONYM_KEY

    app = make_app(instance_path, ROLE="hub", HUB_BOX_KEY=HUB_BOX_KEY, HUB_PSEUDONYM_KEY=HUB_PSEUDONYM_KEY)
    with app.app_context():
        assert db.engine.dialect.name == "sqlite" and not people_days.available(db.session)
        with write_transaction(db.session):
            demo.load(db.session)
        rng = random.Random(2)
        _insert(_rows(rng, 300))
        assert _catch_up() == 0
        _check_dashboard(rng, ranges=4)
        db.session.remove()
        db.engine.dispose()
