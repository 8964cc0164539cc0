"""`kiosk sync` writes its state through write_transaction (BEGIN IMMEDIATE), like every other
writer: a plain read-then-write transaction cannot be upgraded once a visitor's check-in has
committed in between (SQLite answers "database is locked" at once, no busy wait). Fails with the
old `session.commit()` version of _record_ack (sqlite3.OperationalError: database is locked)."""

import sqlite3

from sqlalchemy import func, select

from kiosk.db import utcnow, write_transaction
from kiosk.sync.models import OutboxEvent
from kiosk.sync.services import _record_ack, sync_state


def test_an_ack_is_recorded_although_a_visitor_committed_since_the_sync_read(app, session, instance_path):
    with write_transaction(session):
        sync_state(session)
    # The sync run has read (a deferred read transaction is open, as between its steps)…
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    # …and a check-in on the kiosk commits meanwhile, from another connection.
    other = sqlite3.connect(instance_path / "kiosk.sqlite3")
    with other:
        other.execute("UPDATE sync_state SET last_error = 'written by another connection' WHERE id = 1")
    other.close()
    _record_ack(session, 0, utcnow())
    session.rollback()
    assert sync_state(session).last_error == "written by another connection"
