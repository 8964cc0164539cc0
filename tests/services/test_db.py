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


def test_grouped_writes_share_one_transaction_and_a_refusal_rolls_back_only_its_own(app):
    """Units of work that queue while the writer lock is taken (a commit on its way to the disk)
    go through together: one BEGIN IMMEDIATE, one commit. A unit that fails after writing loses
    its own rows only (a savepoint) and its caller gets its error; the others are stored.

    Shown to fail without the savepoint (the failing unit's exception caught without rolling
    back to it): the refused unit's row was committed with the others."""
    from kiosk.db import _QUEUES, _writer_lock, grouped_write

    with app.app_context():
        db.session.execute(text("CREATE TABLE grouped (name TEXT NOT NULL)"))
        db.session.commit()
        lock = _writer_lock(db.session)
    statements: list[str] = []
    engine_events = db.engine

    def record(dbapi_connection, _record, _proxy):
        # What SQLite itself runs (the group begins and commits on the DBAPI connection).
        dbapi_connection.set_trace_callback(statements.append)

    outcomes: dict[str, object] = {}

    def worker(name: str):
        def unit(connection):
            connection.execute(text("INSERT INTO grouped VALUES (:name)"), {"name": name})
            if name == "refused":
                raise ValueError("refused after writing")
            return name.upper()

        with app.app_context():
            try:
                outcomes[name] = grouped_write(db.session, unit)
            except ValueError as error:
                outcomes[name] = error
            finally:
                db.session.remove()

    names = ["a", "b", "refused", "c", "d"]
    threads = [threading.Thread(target=worker, args=(name,)) for name in names]
    event.listen(engine_events, "checkout", record)
    lock.acquire()  # another writer's commit in progress: everyone queues
    try:
        for t in threads:
            t.start()
        while len(_QUEUES.get(id(lock), [])) < len(names):
            threading.Event().wait(0.01)
    finally:
        lock.release()
    for t in threads:
        t.join()
    event.remove(engine_events, "checkout", record)
    grouped = list(statements)
    assert {k: v for k, v in outcomes.items() if k != "refused"} == {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert isinstance(outcomes["refused"], ValueError)
    with app.app_context():
        assert sorted(db.session.execute(text("SELECT name FROM grouped")).scalars()) == ["a", "b", "c", "d"]
    assert grouped.count("BEGIN IMMEDIATE") == 1 and grouped.count("COMMIT") == 1
    assert not [s for s in grouped if s.startswith("BEGIN") and s != "BEGIN IMMEDIATE"]


def test_a_grouped_write_alone_is_rolled_back_whole_and_refused_inside_a_unit_of_work(session):
    from kiosk.db import grouped_write

    session.execute(text("CREATE TABLE grouped (name TEXT NOT NULL)"))
    session.commit()

    def unit(connection):
        connection.execute(text("INSERT INTO grouped VALUES ('x')"))
        raise LookupError("refused")

    with pytest.raises(LookupError):
        grouped_write(session, unit)
    assert session.execute(text("SELECT count(*) FROM grouped")).scalar() == 0
    session.rollback()
    with pytest.raises(RuntimeError, match="inside write_transaction"), write_transaction(session):
        grouped_write(session, lambda connection: None)


def test_a_grouped_write_moves_the_commit_generation_on(session):
    """The group commits on a connection of its own, outside the Session: the caches on
    kiosk.cache's commit generation must still hear of it, as of a Session's commit (the
    group's statements here run on the DBAPI connection, so no SQLAlchemy commit event either)."""
    from kiosk.cache import commit_generation
    from kiosk.db import grouped_write

    session.execute(text("CREATE TABLE grouped (name TEXT NOT NULL)"))
    session.commit()
    before = commit_generation.check(session)
    session.rollback()
    grouped_write(session, lambda connection: connection.connection.driver_connection.execute("INSERT INTO grouped VALUES ('x')"))
    assert commit_generation.value != before
    assert commit_generation.check(session) != before


def test_the_write_timer_counts_every_group_and_unit_only_when_switched_on(app, tmp_path, monkeypatch):
    """KIOSK_WRITE_STATS (bench/writelock.py, kiosk.write_stats): each group's size and phases, each unit's time and
    each caller's stay, written whole to the file; a refusal is timed too and still reaches its
    caller. Off (the default) nothing is recorded."""
    import json

    from kiosk import db as kiosk_db
    from kiosk.db import grouped_write
    from kiosk.write_stats import WriteStats

    with app.app_context():
        db.session.execute(text("CREATE TABLE timed (name TEXT NOT NULL)"))
        db.session.commit()
        stats = WriteStats(str(tmp_path / "stats.json"), background=False)
        monkeypatch.setattr(kiosk_db, "_STATS", None)
        grouped_write(db.session, lambda connection: connection.connection.driver_connection.execute("INSERT INTO timed VALUES ('off')"))
        assert stats.groups == []
        monkeypatch.setattr(kiosk_db, "_STATS", stats)
        for name in ("a", "b"):
            grouped_write(db.session, lambda connection, name=name: connection.connection.driver_connection.execute("INSERT INTO timed VALUES (?)", (name,)))

        def refused(connection):
            raise LookupError("refused")

        with pytest.raises(LookupError):
            grouped_write(db.session, refused)
        stats.dump()
        db.session.rollback()
        assert db.session.execute(text("SELECT count(*) FROM timed")).scalar() == 3
    written = json.loads((tmp_path / "stats.json").read_text())
    assert [group[0] for group in written["groups"]] == [1, 1, 1]
    assert len(written["units"]) == len(written["stays"]) == len(written["lock_waits"]) == 3
    for _size, held, _cpu, begin, units, commit in written["groups"]:
        assert held >= begin + units >= 0 and commit >= 0 and abs(held - (begin + units + commit)) < 1e-6
