"""A kiosk keeps two push batches on the wire (kiosk.sync.services.PUSH_DEPTH): the hub may store
the second before the first. The acknowledged sequence then counts every event held without a
gap, so the first batch's answer acknowledges both and nothing is sent twice. Real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from kiosk.db import write_transaction
from kiosk.extensions import db
from kiosk.hub import services
from kiosk.hub.models import HubCentre, HubEvent, HubKey


def _events(first: int, count: int) -> list[dict]:
    start = datetime(2026, 11, 28, 2, tzinfo=UTC)
    return [
        {
            "seq": seq,
            "event_id": str(uuid.uuid4()),
            "type": "booking.created",
            "schema_version": 1,
            "occurred_at": (start + timedelta(seconds=seq)).isoformat(),
            "payload": {"booking_id": seq},
        }
        for seq in range(first, first + count)
    ]


def _key(code: str) -> HubKey:
    enrolment = services.create_enrolment(db.session, code)
    with write_transaction(db.session):
        issued = services.enrol(db.session, enrolment)
    return db.session.scalar(select(HubKey).where(HubKey.key_id == issued.key_id))


def test_a_batch_stored_before_the_one_ahead_of_it_is_acknowledged_with_it(hub_app):
    """Shown to fail without counting held events (the first batch's answer acknowledged only
    its own 5, and the kiosk sent the second batch again)."""
    hub = services.secrets_from_config(hub_app.config)
    key = _key("XH-CY-CY1")
    first, second, third = _events(1, 5), _events(6, 5), _events(12, 3)  # 11 never arrives
    with write_transaction(db.session):
        ahead = services.ingest(db.session, key, second, hub)
    assert (ahead.acked_seq, ahead.inserted) == (0, 5)  # stored, not acknowledged: 1-5 missing
    with write_transaction(db.session):
        behind = services.ingest(db.session, key, first, hub)
    assert (behind.acked_seq, behind.inserted) == (10, 5)
    with write_transaction(db.session):
        after_gap = services.ingest(db.session, key, third, hub)
    assert after_gap.acked_seq == 10  # a real gap still stops the cursor
    db.session.rollback()
    assert db.session.get(HubCentre, key.centre_id).acked_seq == 10
    assert db.session.scalar(select(func.count()).select_from(HubEvent).where(HubEvent.centre_id == key.centre_id)) == 13
