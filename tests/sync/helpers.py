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
