"""Helpers for the sync tests: enrol a kiosk, fill its outbox fast, count the hub's rows."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from kiosk.extensions import db
from kiosk.hub import services as hub_services
from kiosk.sync import services as sync_services
from kiosk.sync.client import HubClient


def enrolment_code(hub_app, centre_code: str) -> str:
    with hub_app.app_context():
        code = hub_services.create_enrolment(db.session, centre_code, created_by="test")
        db.session.commit()
        return code


class Enrolled(NamedTuple):
    centre_code: str
    key_id: str
    key_secret: str


def enrol(kiosk, hub_url: str, code: str) -> Enrolled:
    def run(session):
        state = sync_services.enrol(session, HubClient(hub_url, app_version="test"), code)
        return Enrolled(state.centre_code, state.key_id, state.key_secret)

    return kiosk.run(run)


def client(kiosk, **kwargs) -> HubClient:
    def make(session):
        return sync_services.client_for(sync_services.sync_state(session), app_version="test", **kwargs)

    return kiosk.run(make)


def sync(kiosk, **kwargs):
    hub_client = kwargs.pop("hub_client", None) or client(kiosk)
    return kiosk.run(sync_services.run_sync, hub_client, **kwargs)


def fill_outbox(kiosk, count: int, *, phones: int = 500, start: datetime | None = None) -> None:
    """``count`` check-in events as the check-in service writes them before enrolment (phone
    waiting to be sealed), ``phones`` distinct people, one minute apart."""
    start = start or datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
    rows = []
    for i in range(count):
        payload = {
            "checkin_id": i + 1,
            "activity_id": 1,
            "category": "culture",
            "method": "kiosk_phone",
            "member": False,
            "points": 5,
            "person_phone": f"139{i % phones:08d}",
        }
        rows.append((str(uuid.uuid4()), "checkin.created", 1, (start + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S.%f"), json.dumps(payload)))
    with sqlite3.connect(kiosk.database) as connection:
        connection.executemany("INSERT INTO outbox_event (event_id, type, schema_version, occurred_at, payload) VALUES (?, ?, ?, ?, ?)", rows)


def hub_count(hub_sql, centre_code: str | None = None) -> int:
    if centre_code is None:
        return hub_sql.execute("SELECT count(*) FROM hub_event").fetchone()[0]
    return hub_sql.execute("SELECT count(*) FROM hub_event e JOIN centre c ON c.id = e.centre_id WHERE c.code = %s", (centre_code,)).fetchone()[0]


def exactly_once(hub_sql, centre_code: str) -> tuple[int, int, int, int]:
    """(rows, distinct event_ids, max seq, acked_seq) for a centre."""
    rows, distinct, top = hub_sql.execute(
        "SELECT count(*), count(DISTINCT event_id), coalesce(max(seq), 0) FROM hub_event e JOIN centre c ON c.id = e.centre_id WHERE c.code = %s",
        (centre_code,),
    ).fetchone()
    acked = hub_sql.execute("SELECT acked_seq FROM hub_centre h JOIN centre c ON c.id = h.centre_id WHERE c.code = %s", (centre_code,)).fetchone()[0]
    return rows, distinct, top, acked


def rolled_up() -> None:
    """Apply the pushes queued for the roll-ups (in the hub app's context), as the dashboard
    does before it reads: the tests that read roll-up tables directly read them after this."""
    from kiosk.hub import rollup

    rollup.catch_up(db.session)
    db.session.remove()


def hub_cli(hub, *args: str):
    """`kiosk hub ARGS` in its own process, configured as the hub process ``hub``."""
    import subprocess
    import sys

    from kiosk.config import PROJECT_ROOT

    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "hub", *args], check=False, env=hub.env(), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )


def rollups_and_recount(hub_sql) -> tuple[dict, dict]:
    """(what the roll-ups hold, what they must hold recounted from hub_event), the latter from
    the events' rows with the points read as the push reads them (services._points), people
    per centre, branch and level of centre from the distinct check-in person-days."""
    from collections import Counter, defaultdict

    kept: dict = {
        "daily": {(c, d, t): (int(n), int(p)) for c, d, t, n, p in hub_sql.execute("SELECT centre_id, day, type, events, points FROM hub_daily")},
        "monthly": {(c, m, t): (int(n), int(p)) for c, m, t, n, p in hub_sql.execute("SELECT centre_id, month, type, events, points FROM hub_monthly")},
        "person_day": set(hub_sql.execute("SELECT day, centre_id, person FROM hub_person_day").fetchall()),
        "people": {(s, k, d): int(n) for s, k, d, n in hub_sql.execute("SELECT scope_id, kind, start, people FROM hub_people_count") if n},
    }
    daily: dict = defaultdict(lambda: [0, 0])
    monthly: dict = defaultdict(lambda: [0, 0])
    person_days = set()
    for centre, day, type_, person, payload in hub_sql.execute("SELECT centre_id, day, type, person, payload FROM hub_event"):
        points = hub_services._points(payload)
        # jsonb prints a float such as 1e+100 as a long integer, which Python reads back as an
        # int; the push refuses integer points beyond MAX_POINTS, so such a value was a float: 0.
        points = points if abs(points) <= hub_services.MAX_POINTS else 0
        for key in ((centre, day, type_), None):
            figures = daily[key] if key else monthly[(centre, day.replace(day=1), type_)]
            figures[0] += 1
            figures[1] += points
        if type_ == hub_services.PERSON_DAY_TYPE and person:
            person_days.add((day, centre, person))
    parents = dict(hub_sql.execute("SELECT id, parent_id FROM centre").fetchall())
    levels = dict(hub_sql.execute("SELECT id, level FROM centre").fetchall())
    people: dict = defaultdict(set)
    for day, centre, person in person_days:
        month, year = day.replace(day=1), day.replace(month=1, day=1)
        people[(centre, "m", month)].add(person)
        people[(centre, "y", year)].add(person)
        scope = centre
        while scope is not None:
            for kind, start in (
                ("bm", month),
                ("by", year),
                (hub_services.level_kind(levels[centre], "m"), month),
                (hub_services.level_kind(levels[centre], "y"), year),
            ):
                people[(scope, kind, start)].add(person)
            scope = parents[scope]
    expected = {
        "daily": {k: tuple(v) for k, v in daily.items()},
        "monthly": {k: tuple(v) for k, v in monthly.items()},
        "person_day": person_days,
        "people": dict(Counter({k: len(v) for k, v in people.items()})),
    }
    return kept, expected
