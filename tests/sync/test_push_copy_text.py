"""The push COPYs its rows as text it formats itself (services._copy_line, one pass with the
validation): what PostgreSQL stores must be what the kiosk sent, whatever the characters.

Shown to fail without the escaping in _copy_line: the tab in the type splits the row (COPY
refuses it: "extra data after last expected column"), and the payload's JSON escapes (a
backslash before n, t, a quote) come back as a real newline or tab or a lone backslash,
so the stored payload differs from the one sent (or is not JSON at all)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from kiosk.db import write_transaction
from kiosk.extensions import db
from kiosk.hub import services
from kiosk.hub.models import HubKey
from kiosk.sync import protocol
from kiosk.sync.protocol import seal
from tests.sync.conftest import HUB_PUBLIC_KEY

AWKWARD_TYPES = ["tab\there", "back\\slash", "new\nline\rreturn", "引号\"与'", "plain.type"]
AWKWARD_STRINGS = ["a\\nb", "tab\tin", "line\nbreak", 'quote " and \\"', "\\\\N", "\\N", "中文 🙂", "cr\r", "\x01\x1f", ""]


def _key(code: str) -> HubKey:
    enrolment = services.create_enrolment(db.session, code)
    with write_transaction(db.session):
        issued = services.enrol(db.session, enrolment)
    return db.session.scalar(select(HubKey).where(HubKey.key_id == issued.key_id))


def _events(count: int) -> list[dict]:
    start = datetime(2026, 3, 1, 23, 30, 0, 123456, tzinfo=UTC)
    events = []
    for i in range(count):
        payload: dict = {
            "text": AWKWARD_STRINGS[i % len(AWKWARD_STRINGS)],
            "nested": {"list": [AWKWARD_STRINGS[(i + 1) % len(AWKWARD_STRINGS)], i, None, True], "float": 0.5 if i % 3 == 0 else i},
            "big": 2**70 if i % 7 == 0 else -i,
        }
        if i % 2:
            payload["person_sealed"] = seal(HUB_PUBLIC_KEY, f"139{i % 5:08d}")
        events.append(
            {
                "seq": i + 1,
                "event_id": str(uuid.uuid4()),
                "type": AWKWARD_TYPES[i % len(AWKWARD_TYPES)],
                "schema_version": 1 + i % 3,
                "occurred_at": (start + timedelta(minutes=37 * i)).isoformat(),
                "payload": payload,
            }
        )
    return events


def test_rows_copied_as_text_are_stored_as_sent(hub_app, hub_sql):
    hub = services.secrets_from_config(hub_app.config)
    key = _key("XH-LY-HLSQ")
    events = _events(60)
    with write_transaction(db.session):
        result = services.ingest(db.session, key, events, hub)
    assert (result.inserted, result.duplicates, result.conflicts, result.acked_seq) == (60, 0, [], 60)
    stored = {
        row[0]: row[1:]
        for row in hub_sql.execute(
            "SELECT event_id, seq, type, schema_version, occurred_at, day, person, payload, payload_hash, received_at IS NOT NULL"
            " FROM hub_event WHERE centre_id = %s",
            (key.centre_id,),
        )
    }
    assert len(stored) == 60
    for event in events:
        seq, type_, version, occurred_at, day, person, payload, payload_hash, received = stored[event["event_id"]]
        sent = dict(event["payload"])
        sealed = sent.pop("person_sealed", None)
        expected_person = hub.person_of(sealed) if sealed else None
        if expected_person:
            sent["person"] = expected_person
        assert (seq, type_, version, person, received) == (event["seq"], event["type"], event["schema_version"], expected_person, True)
        assert occurred_at == datetime.fromisoformat(event["occurred_at"])
        assert day == occurred_at.astimezone(hub.zone).date()
        assert payload == sent
        assert payload_hash == protocol.canonical_hash(
            {"type": event["type"], "schema_version": event["schema_version"], "occurred_at": occurred_at.isoformat(), "payload": sent}
        )
        assert "139" not in str(payload)
    # Resent as they are, every event is a duplicate (the hash of what is stored is the hash
    # of what was sent), none a conflict.
    with write_transaction(db.session):
        again = services.ingest(db.session, key, events, hub)
    assert (again.inserted, again.duplicates, again.conflicts) == (0, 60, [])
