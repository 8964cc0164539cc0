import threading
from datetime import datetime

import pytest
from sqlalchemy import event, select, text

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


def _notice(key: str):
    from kiosk.home.models import Notice

    return Notice(key=key, source="centre", title="t", body="", published_at=datetime.now().astimezone())


def _notices(session) -> int:
    return session.execute(text("SELECT count(*) FROM notice")).scalar()


@pytest.mark.parametrize("how", ["new", "dirty", "deleted", "flushed", "orm_update"])
def test_write_transaction_refuses_to_commit_changes_made_outside_it(session, how):
    """A change made outside any unit of work must not ride along with the next one. Shown to
    fail without the check: the old write_transaction committed whatever was pending."""
    from sqlalchemy import update

    from kiosk.home.models import Notice

    with write_transaction(session):
        session.add(_notice("kept"))
    kept = session.scalar(select(Notice))
    if how == "new":
        session.add(_notice("stray"))
    elif how == "dirty":
        kept.title = "changed outside"
    elif how == "deleted":
        session.delete(kept)
    elif how == "flushed":
        session.add(_notice("stray"))
        session.flush()
    else:
        session.execute(update(Notice).values(title="changed outside"))
    with pytest.raises(RuntimeError, match="uncommitted changes"), write_transaction(session):
        session.add(_notice("never"))
    session.rollback()
    assert _notices(session) == 1
    assert session.execute(text("SELECT title FROM notice")).scalar() == "t"


def test_write_transaction_ends_a_read_and_starts_as_the_writer(session):
    """A request reads first (the logged-in user); the unit of work that follows must begin
    with BEGIN IMMEDIATE, not upgrade that read (SQLITE_BUSY in WAL once another connection
    has committed). An unchanged loaded object does not count as pending."""
    from kiosk.home.models import Notice

    with write_transaction(session):
        session.add(_notice("first"))
    loaded = session.scalar(select(Notice))  # opens a read transaction
    loaded.title = loaded.title  # set to the same value: not a change
    assert session().in_transaction()
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        with write_transaction(session):
            session.add(_notice("second"))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements[0] == "BEGIN IMMEDIATE"
    assert _notices(session) == 2


def test_a_write_transaction_inside_another_is_refused(session):
    with pytest.raises(RuntimeError, match="inside"), write_transaction(session), write_transaction(session):
        pass
