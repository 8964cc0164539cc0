"""kiosk.sync.outbox.hub_public_key() is kept in process on kiosk.cache's commit generation
(issue 9): no query while nothing was committed, yet a new key is used at once."""

from __future__ import annotations

import sqlite3

from sqlalchemy import event

from kiosk.extensions import db
from kiosk.sync.outbox import hub_public_key
from kiosk.sync.services import sync_state


def test_the_key_is_read_once_then_kept_until_a_commit(app, session, instance_path):
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    sync_state(session).hub_public_key = "key-1"
    assert hub_public_key(session) == "key-1"  # its own unflushed change
    session.commit()
    assert hub_public_key(session) == "key-1"
    statements.clear()
    assert hub_public_key(session) == "key-1"
    assert not any("sync_state" in s for s in statements)

    sync_state(session).hub_public_key = "key-2"
    session.flush()  # flushed, not committed: the session still reads its own change
    assert hub_public_key(session) == "key-2"
    session.rollback()
    assert hub_public_key(session) == "key-1"

    db.session.remove()
    with sqlite3.connect(instance_path / "kiosk.sqlite3") as other:  # `kiosk sync` in another process
        other.execute("UPDATE sync_state SET hub_public_key = 'key-3' WHERE id = 1")
    other.close()
    assert hub_public_key(db.session) == "key-3"
