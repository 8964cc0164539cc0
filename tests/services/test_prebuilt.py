"""kiosk.db.Prebuilt (issue 9, part 5): the check-in's statements compiled once and run on the
DBAPI connection store exactly what the same Core statements store through
``Connection.execute``: same values, same SQLite storage classes, same column defaults."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from kiosk.checkin.models import CheckinMethod
from kiosk.checkin.services import CheckinRules, check_in
from kiosk.db import Prebuilt, UTCDateTime, utcnow
from kiosk.extensions import db
from tests.helpers import open_activity_now, register

RULES = CheckinRules(zone=ZoneInfo("Asia/Shanghai"), device_id="kiosk-1", district_key="district-key")

# Every column a check-in writes, with SQLite's storage class of each; ids, the event's uuid,
# the person and the ledger entry's own clock are compared separately.
CHECKIN_SQL = (
    "SELECT activity_id, member_id IS NULL, phone IS NULL, substr(person_key, 1, 2), occurrence_key, session_date, method, status, points,"
    " device_id, staff_id, reason, created_at, typeof(session_date), typeof(created_at), typeof(points), typeof(method)"
    " FROM check_in WHERE id = ?"
)
POINTS_SQL = "SELECT delta, reason, note, actor_id, typeof(created_at), length(created_at), typeof(reason) FROM points_entry WHERE reference = ?"
EVENT_SQL = "SELECT type, schema_version, occurred_at, sent_at, typeof(payload), typeof(occurred_at) FROM outbox_event WHERE payload ->> '$.checkin_id' = ?"
PAYLOAD_SQL = "SELECT payload FROM outbox_event WHERE payload ->> '$.checkin_id' = ?"


def _stored(instance_path, checkin_id: int) -> tuple:
    with sqlite3.connect(instance_path / "kiosk.sqlite3") as raw:
        checkin = raw.execute(CHECKIN_SQL, (checkin_id,)).fetchone()
        points = raw.execute(POINTS_SQL, (f"checkin:{checkin_id}",)).fetchone()
        event = raw.execute(EVENT_SQL, (checkin_id,)).fetchone()
        payload = raw.execute(PAYLOAD_SQL, (checkin_id,)).fetchone()[0]
    raw.close()
    # The payload's text (key order, escaping) with this check-in's own numbers taken out.
    return checkin, points, event, payload.replace(f'"checkin_id": {checkin_id},', "")


@pytest.mark.parametrize("member", [True, False], ids=["member", "guest"])
def test_prebuilt_statements_store_what_core_stores(app, session, instance_path, monkeypatch, member):
    activity = open_activity_now(session, points="3")
    if member:
        first, second = register(session, name="张建华", phone="13812345678"), register(session, name="李秀英", phone="13812340000")
        session.commit()
        people = [{"member": first}, {"member": second}]
    else:
        people = [{"phone": "13900001111"}, {"phone": "13900002222"}]
    now = utcnow().replace(microsecond=123456)
    results = []
    for enabled, person in zip((True, False), people, strict=True):
        monkeypatch.setattr(Prebuilt, "enabled", enabled)
        results.append(check_in(session, activity.id, rules=RULES, method=CheckinMethod.POSTER, now=now, **person))
    prebuilt, core = (_stored(instance_path, result.checkin_id) for result in results)
    assert prebuilt[0] == core[0] and prebuilt[0][13:] == ("text", "text", "integer", "text")
    assert prebuilt[2] == core[2]
    assert prebuilt[3].replace("13812345678", "").replace("13900001111", "") == core[3].replace("13812340000", "").replace("13900002222", "")
    if member:
        assert prebuilt[1] == core[1] == (3, "checkin", "", None, "text", 26, "text")  # created_at by the column default
        assert results[0].balance == results[1].balance == 3
    else:
        assert prebuilt[1] is core[1] is None


def test_a_prebuilt_statement_reads_typed_values_and_raises_as_core_does(app, session):
    metadata = MetaData()
    table = Table("prebuilt_probe", metadata, Column("id", Integer, primary_key=True), Column("name", String(10), unique=True), Column("at", UTCDateTime()))
    metadata.create_all(db.engine)
    at = datetime(2026, 11, 29, 9, 30, 1, 5, tzinfo=ZoneInfo("Asia/Shanghai"))
    write = Prebuilt(insert(table), ["name", "at"])
    read = Prebuilt(select(table.c.name, table.c.at).where(table.c.id == bindparam("id")))
    connection = session.connection()
    new_id = write.insert(connection, {"name": "a", "at": at})
    assert read.first(connection, {"id": new_id}) == ("a", at)
    assert read.first(connection, {"id": new_id + 1}) is None
    assert read.first(connection, {"id": new_id})[1].tzinfo is not None  # aware, in UTC
    with pytest.raises(IntegrityError):
        write.insert(connection, {"name": "a", "at": at + timedelta(seconds=1)})
    with pytest.raises(KeyError, match="name"):
        write.insert(connection, {"at": at})
    session.rollback()
