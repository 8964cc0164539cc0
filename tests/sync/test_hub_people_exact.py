"""The distinct-people roll-ups kept at ingest (hub_people, hub_people_count) equal a recount
from hub_person_day, on PostgreSQL, for pushes of several centres of one branch, people who come
back on other days, months and across a new year, in several batches and resends."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from kiosk.centres.models import Centre
from kiosk.db import write_transaction
from kiosk.extensions import db
from kiosk.hub import rollup, services
from kiosk.hub.models import HubKey, HubPeople, HubPeopleCount, HubPersonDay
from kiosk.sync.protocol import forget_seals, seal
from tests.sync.conftest import HUB_PUBLIC_KEY

CENTRES = ("XH-ZT-CDC", "XH-ZT-YCXZ", "XH-ZT", "XH-GD-JH")  # three in 转塘's branch


def _key(code: str) -> HubKey:
    enrolment = services.create_enrolment(db.session, code)
    with write_transaction(db.session):
        issued = services.enrol(db.session, enrolment)
    return db.session.scalar(select(HubKey).where(HubKey.key_id == issued.key_id))


def _expected() -> dict[tuple[int, str, date], int]:
    people: dict[tuple[int, str, date], set[str]] = defaultdict(set)
    for row in db.session.scalars(select(HubPersonDay)):
        month, year = row.day.replace(day=1), row.day.replace(month=1, day=1)
        level = db.session.get(Centre, row.centre_id).level.value
        people[(row.centre_id, "m", month)].add(row.person)
        people[(row.centre_id, "y", year)].add(row.person)
        for scope in services.scopes(db.session, row.centre_id):
            people[(scope, "bm", month)].add(row.person)
            people[(scope, "by", year)].add(row.person)
            people[(scope, services.level_kind(level, "m"), month)].add(row.person)
            people[(scope, services.level_kind(level, "y"), year)].add(row.person)
    return {key: len(persons) for key, persons in people.items()}


def test_people_counts_kept_at_ingest_equal_a_recount(hub_app):
    """Guards the cascade in _insert_events (new in a year or to a branch only if new to the
    centre that month): a year or branch row left out would make a count here fall short."""
    hub = services.secrets_from_config(hub_app.config)
    ids = {code: db.session.scalar(select(Centre.id).where(Centre.code == code)) for code in ("XH", "XH-ZT", "XH-ZT-CDC")}
    assert services.scopes(db.session, ids["XH-ZT-CDC"]) == [ids["XH-ZT-CDC"], ids["XH-ZT"], ids["XH"]]
    keys = {code: _key(code) for code in CENTRES}
    seqs = dict.fromkeys(CENTRES, 0)
    start = datetime(2026, 11, 29, 4, tzinfo=UTC)  # 12:00 in Shanghai
    phones = [f"1380000{n:04d}" for n in range(7)]
    for round_ in range(4):
        forget_seals()  # a kiosk restarted between nights: new sealed values, same people
        for c, code in enumerate(CENTRES):
            events = []
            for i in range(12):
                day = start + timedelta(days=(round_ * 11 + i * 3 + c) % 40)  # Nov 29 … Jan 7
                seqs[code] += 1
                payload = {"points": 1, "person_sealed": seal(HUB_PUBLIC_KEY, phones[(i * (c + 2) + round_) % len(phones)])}
                events.append(
                    {
                        "seq": seqs[code],
                        "event_id": str(uuid.uuid4()),
                        "type": "checkin.created",
                        "schema_version": 1,
                        "occurred_at": day.isoformat(),
                        "payload": payload,
                    }
                )
            for batch in (events[:5], events[5:], events[3:8]):  # the last one resent
                with write_transaction(db.session):
                    services.ingest(db.session, keys[code], batch, hub)
    rollup.catch_up(db.session)
    kept = {(row.scope_id, row.kind, row.start): row.people for row in db.session.scalars(select(HubPeopleCount)) if row.people}
    expected = _expected()
    assert kept == expected
    assert len(db.session.scalars(select(HubPeople)).all()) == sum(expected.values())
    assert any(kind == "by" and start.year == 2027 for (_scope, kind, start) in expected)  # crossed the new year
    # Centres of three levels in 转塘's branch: the sub-district centre, a village, a business district.
    assert {"lsm", "lsy", "lvm", "lvy", "lbm", "lby"} <= {kind for (scope, kind, _start) in expected if scope == ids["XH-ZT"]}
