import threading
from datetime import datetime

import pytest
from sqlalchemy import text

from kiosk.db import write_transaction
from kiosk.extensions import db
from kiosk.home.services import upsert_notice


def test_sqlite_connections_get_wal_foreign_keys_busy_timeout_and_full_sync(session):
    assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert session.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    assert session.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def test_foreign_keys_are_enforced(session):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        session.execute(text("INSERT INTO centre (code, name, level, parent_id) VALUES ('X', 'x', 'community', 9999)"))
        session.flush()
    session.rollback()


def test_naive_datetimes_are_refused(session):
    with pytest.raises(Exception, match="naive datetime"):
        upsert_notice(session, key="k", source="centre", title="t", body="", published_at=datetime(2026, 1, 1))
        session.flush()
    session.rollback()


def test_read_then_write_transactions_never_lose_an_update_under_contention(app):
    """Two threads do read-increment-write 50 times each. With BEGIN IMMEDIATE every one of the
    100 increments lands; a deferred BEGIN would fail on the lock upgrade (SQLITE_BUSY)."""
    with app.app_context():
        db.session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        db.session.execute(text("INSERT INTO counter VALUES (0)"))
        db.session.commit()
    errors: list[BaseException] = []

    def worker():
        with app.app_context():
            try:
                for _ in range(50):
                    with write_transaction(db.session) as s:
                        n = s.execute(text("SELECT n FROM counter")).scalar()
                        s.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.app_context():
        assert db.session.execute(text("SELECT n FROM counter")).scalar() == 100


def test_write_transaction_rolls_back_on_error(session):
    with pytest.raises(RuntimeError), write_transaction(session) as s:
        upsert_notice(s, key="gone", source="centre", title="t", body="", published_at=datetime.now().astimezone())
        raise RuntimeError("boom")
    assert session.execute(text("SELECT count(*) FROM notice WHERE key = 'gone'")).scalar() == 0
