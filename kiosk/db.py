"""Database base class and SQLite connection settings.

Every SQLite connection gets WAL (readers never block the writer), foreign keys, a busy
timeout and synchronous=FULL: a kiosk loses power, and a visitor who saw "签到成功" must not
lose it (DESIGN.md §11: FULL still commits ~2,900 transactions/s here).

Writers that read-then-write start with BEGIN IMMEDIATE (see write_transaction) so two
writers queue on the busy timeout instead of failing on a lock upgrade. Small units of work
that arrive together may share one commit (grouped_write): one fsync for the group.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Engine, MetaData, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session
from sqlalchemy.types import TypeDecorator

from kiosk import write_stats
from kiosk.write_stats import WriteStats

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BUSY_TIMEOUT_MS = 10_000
IMMEDIATE_OPTION = "kiosk_begin_immediate"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and gives them back aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use kiosk.db.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def configure_sqlite(engine: Engine) -> None:
    """Install the pragmas and the BEGIN handling on an SQLite engine (no-op elsewhere)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every test
        # Let SQLAlchemy, not pysqlite, decide when a transaction begins (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        options = connection.get_execution_options()
        if options.get(_BEGUN):
            return  # a group's transaction, already begun on the DBAPI connection (_run_group)
        if options.get(IMMEDIATE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


# One lock per SQLite database file, shared by the threads of this process (waitress's
# workers). SQLite's own busy handler makes a waiting writer sleep 1, 2, 5 … 100 ms between
# tries, so under a burst the write lock sits idle while everyone sleeps (measured: 20
# simultaneous check-ins took 4.5 s). Queuing on a Python lock first hands the database to the
# next writer the moment it is free; busy_timeout still covers other processes (CLI, sync).
_WRITER_LOCKS: dict[str, threading.Lock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()
_held = threading.local()


def _writer_lock(session: Session) -> threading.Lock | None:
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return None
    key = str(bind.engine.url)
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(key, threading.Lock())


# Marks a session whose current transaction has written (a flush, or an ORM insert/update/
# delete statement) and not yet committed: write_transaction refuses to start on top of it.
_WROTE = "kiosk_uncommitted_writes"


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush_context) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _on_orm_execute(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: committed or rolled back
        session.info.pop(_WROTE, None)


def pending_changes(session: Session) -> bool:
    """True when the session holds changes that a commit would write: new, deleted or modified
    objects, or writes already flushed in the open transaction."""
    return bool(
        session.new or session.deleted or any(session.is_modified(obj) for obj in session.dirty) or (session.in_transaction() and session.info.get(_WROTE))
    )


@contextmanager
def write_transaction(session: Session | scoped_session[Session]) -> Iterator[Session]:
    """The one way to commit: run a unit of work under SQLite's write lock from its first
    statement (BEGIN IMMEDIATE), commit on success, roll back on any exception.

    It refuses to start (RuntimeError) when the session already holds changes: they were made
    outside any unit of work and would otherwise be committed silently with this one. A
    read-only transaction that is open (a request that loaded the logged-in user, say) is ended
    first, so the unit of work starts as a writer instead of trying to upgrade a read, which
    fails in WAL mode once another connection has committed ("database is locked"; the busy
    timeout does not help).

    On PostgreSQL it is a plain transaction (row locks or conditional updates do the work
    there). Not re-entrant: a unit of work never starts another inside itself.
    """
    if isinstance(session, scoped_session):
        session = session()
    if getattr(_held, "active", False):
        raise RuntimeError("write_transaction() inside write_transaction()")
    if pending_changes(session):
        raise RuntimeError(
            "write_transaction() refused: the session holds uncommitted changes made outside a unit of work; "
            "make every write inside `with write_transaction(session):`"
        )
    if session.in_transaction():
        # Read-only (checked above): ending it writes nothing and lets IMMEDIATE apply.
        session.commit()
    lock = _writer_lock(session)
    if lock is not None:
        lock.acquire()
    _held.active = True
    try:
        session.connection(execution_options={IMMEDIATE_OPTION: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
    finally:
        _held.active = False
        if lock is not None:
            lock.release()


# ---- group commit ----
#
# With synchronous=FULL every commit waits for the disk (fsync: 0.3 ms on a quiet SSD, 2–4 ms
# on a busy one), and the writer lock makes writers take turns: under a burst of check-ins the
# disk, not Python, set the pace. grouped_write() lets the units of work that queue up while one
# commit is on its way to the disk go through together: the next writer to get the lock runs
# every waiting unit in one transaction (BEGIN IMMEDIATE), each inside its own savepoint, and
# commits once. Each unit still commits all of its rows or none, and no one hears "done"
# before the commit that holds their rows has returned.

T = TypeVar("T")


@dataclass(eq=False)
class _Unit:
    work: Callable[[Connection], Any]
    done: bool = False
    result: Any = None
    error: BaseException | None = None


_QUEUES: dict[int, list[_Unit]] = {}  # per writer lock (id): units waiting for a commit


# The write timer (kiosk.write_stats), for measuring only: None unless KIOSK_WRITE_STATS is set.
_STATS: WriteStats | None = write_stats.from_environment()


def grouped_write(session: Session | scoped_session[Session], work: Callable[[Connection], T]) -> T:
    """Run ``work(connection)`` as a unit of work that may share its transaction and commit with
    others queued at the same moment (SQLite; elsewhere a transaction of its own).

    ``work`` may run on another thread (whichever writer takes the lock next) and must use only
    the connection it is given: Core statements, no ORM session, no Flask request. A refusal it
    raises rolls back its own statements only (a savepoint) and is raised here, in the caller's
    thread; a failed commit fails every unit of the group. Same refusals as write_transaction:
    not inside another unit of work, not on top of uncommitted changes.
    """
    if isinstance(session, scoped_session):
        session = session()
    if getattr(_held, "active", False):
        raise RuntimeError("grouped_write() inside write_transaction()")
    lock = _writer_lock(session)
    if lock is None:
        with write_transaction(session):
            return work(session.connection())
    if pending_changes(session):
        raise RuntimeError("grouped_write() refused: the session holds uncommitted changes made outside a unit of work")
    unit = _Unit(work)
    stats = _STATS
    if stats is not None:
        queued = time.perf_counter()
    with _WRITER_LOCKS_GUARD:
        queue = _QUEUES.setdefault(id(lock), [])
        queue.append(unit)
    with lock:
        if not unit.done:
            with _WRITER_LOCKS_GUARD:
                group = list(queue)
                queue.clear()
            if stats is None:
                _run_group(session, group)
            else:
                stats.run_group(lambda: _run_group(session, group), group, queued, _held)
    if stats is not None:
        stats.stay(queued)
    if unit.error is not None:
        raise unit.error
    return unit.result


_SAVEPOINT = "SAVEPOINT kiosk_unit"
_ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO SAVEPOINT kiosk_unit"
_RELEASE_SAVEPOINT = "RELEASE SAVEPOINT kiosk_unit"
# On the group's own connection: its transaction was begun on the DBAPI connection (see _on_begin).
_BEGUN = "kiosk_begun_outside"


def _run_group(session: Session, group: list[_Unit]) -> None:
    """Under the writer lock: every unit of ``group`` in one BEGIN IMMEDIATE transaction.

    The transaction runs on a pooled connection of its own, begun and committed on the DBAPI
    connection: the leader's Session (its transaction objects, flush and events) is not part of
    it. What a Session commit would have done for the rest of the process is done here: the
    commit generation moves on (kiosk.cache) once the commit has returned. A unit that runs Core
    statements through the connection makes SQLAlchemy begin a transaction of its own on it;
    _on_begin then emits nothing (the DBAPI transaction is already open) and the commit goes
    through SQLAlchemy, so the engine's commit event fires as for any commit.
    """
    if session.in_transaction():
        # Read-only (callers checked): ended, so the leader reads the group's rows afterwards.
        session.commit()
    from kiosk.cache import commit_generation, forget_seen

    _held.active = True
    connection = session.get_bind().engine.connect().execution_options(**{_BEGUN: True})
    try:
        driver = connection.connection.driver_connection
        driver.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        write_stats.mark(_held)
        _run_units(connection, group)
        write_stats.mark(_held)
        if any(unit.error is None for unit in group):
            if connection.in_transaction():
                connection.commit()
            else:
                driver.commit()  # type: ignore[union-attr]
            forget_seen(connection.connection.info)
            commit_generation.bump()
        else:
            _rollback(connection)
    except BaseException as error:
        _rollback(connection)
        if _fail_group(group, error):
            raise
    finally:
        connection.close()
        _held.active = False
        for unit in group:
            unit.done = True


def _fail_group(group: list[_Unit], error: BaseException) -> bool:
    """A failed transaction (its commit, or the group's statements) fails every unit that had
    not failed on its own. True when the error must go on up (KeyboardInterrupt, SystemExit)."""
    for unit in group:
        if unit.error is None:
            unit.error, unit.result = error, None
    return not isinstance(error, Exception)


def _rollback(connection: Connection) -> None:
    if connection.in_transaction():
        connection.rollback()
    else:
        connection.connection.driver_connection.rollback()  # type: ignore[union-attr]


def _run_units(connection: Connection, group: list[_Unit]) -> None:
    for unit in group:
        if len(group) == 1:  # alone: a refusal rolls back the whole transaction
            try:
                unit.result = unit.work(connection)
            except Exception as error:  # noqa: BLE001 - handed to the unit's caller, raised there
                unit.error = error
            continue
        # The savepoint in SQLite's own words on the DBAPI connection (SQLAlchemy's
        # begin_nested() costs a transaction object, events and three statements' execution
        # contexts per unit).
        driver = connection.connection.driver_connection
        driver.execute(_SAVEPOINT)  # type: ignore[union-attr]
        try:
            unit.result = unit.work(connection)
        except Exception as error:  # noqa: BLE001 - handed to the unit's caller, raised there
            driver.execute(_ROLLBACK_TO_SAVEPOINT)  # type: ignore[union-attr]
            driver.execute(_RELEASE_SAVEPOINT)  # type: ignore[union-attr]
            unit.error = error
        else:
            driver.execute(_RELEASE_SAVEPOINT)  # type: ignore[union-attr]


# ---- prebuilt statements on the DBAPI connection ----
#
# A Core statement run through ``Connection.execute`` pays, every time, for its cache key, an
# execution context, the parameter dict's construction, events and the result's wrapping: on
# the check-in's hot path that was a quarter of the server's GIL time for ~0.3 ms of SQLite
# work (issue 9, part 5). A Prebuilt statement is compiled once per dialect; on SQLite it runs
# on the DBAPI connection under the unit's transaction with the very bind and result
# processors SQLAlchemy would apply (so the stored values are the same as through Core), and
# elsewhere (the hub's PostgreSQL) it simply goes through ``Connection.execute``. Statement
# events (``before_cursor_execute``) do not see its SQL on SQLite.

_MISSING = object()


def _default_maker(arg: Any, *, callable_: bool) -> Callable[[], Any]:
    """A column default's value per row: SQLAlchemy wraps a callable default to take the
    execution context (unused by the kiosk's defaults, such as utcnow)."""
    if callable_:
        return lambda: arg(None)
    return lambda: arg


class _Compiled:
    """What running a statement on the DBAPI connection needs, computed once per dialect."""

    __slots__ = ("sql", "binds", "defaults", "results")

    def __init__(self, statement: Any, dialect: Any, column_keys: list[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if not dialect.positional or compiled.positiontup is None:
            raise ValueError(f"{dialect.name}: a prebuilt statement needs a positional paramstyle")
        self.sql = compiled.string
        processors = compiled._bind_processors
        # Each position: (name, bind processor or None, the value bound in the statement itself).
        self.binds = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            fixed = _MISSING if bind.required or bind.callable is not None else bind.value
            self.binds.append((name, processors.get(name), fixed))
        # Python-side column defaults of an INSERT (``default=utcnow``), as Core would apply them
        # when the caller gives no value. Server-side or SQL defaults are not supported here.
        self.defaults: dict[str, Callable[[], Any]] = {}
        for column in getattr(compiled, "insert_prefetch", None) or ():
            default = column.default
            if default is None or not (default.is_callable or default.is_scalar):
                raise ValueError(f"{column}: only Python-side defaults are supported in a prebuilt statement")
            self.defaults[column.key] = _default_maker(default.arg, callable_=default.is_callable)
        if getattr(compiled, "postfetch", None) or getattr(compiled, "returning", None):
            raise ValueError("a prebuilt statement cannot fetch server-generated values")
        self.results = [column[3]._cached_result_processor(dialect, None) for column in compiled._result_columns]

    def parameters(self, params: dict[str, Any]) -> list[Any]:
        if self.defaults:
            params = {name: make() for name, make in self.defaults.items() if name not in params} | params
        values = []
        for name, process, fixed in self.binds:
            value = params.get(name, fixed)
            if value is _MISSING:
                raise KeyError(f"prebuilt statement: no value for {name!r}")
            values.append(process(value) if process is not None else value)
        return values

    def row(self, raw: tuple | None) -> tuple | None:
        if raw is None:
            return None
        return tuple(value if process is None else process(value) for process, value in zip(self.results, raw, strict=True))


class Prebuilt:
    """A Core statement for a hot path, compiled once (see above).

        _SELECT = Prebuilt(select(t.c.id, t.c.name).where(t.c.id == bindparam("id")))
        row = _SELECT.first(connection, {"id": 7})          # a plain tuple, values processed
        new_id = _INSERT.insert(connection, {...})           # the new row's primary key

    An INSERT names the columns it is given (``column_keys``); the others get their Python-side
    default, if any, or NULL, exactly as ``Connection.execute(insert(t), {...})`` would.
    """

    # Off: every Prebuilt goes through Connection.execute (bench/toggles.py measures the difference).
    enabled = True

    def __init__(self, statement: Any, column_keys: list[str] | None = None) -> None:
        self.statement = statement
        self.column_keys = column_keys
        self._compiled: dict[int, _Compiled] = {}

    def _for(self, connection: Connection) -> _Compiled | None:
        dialect = connection.dialect
        if dialect.name != "sqlite" or not Prebuilt.enabled:
            return None
        found = self._compiled.get(id(dialect))
        if found is None:
            found = self._compiled[id(dialect)] = _Compiled(self.statement, dialect, self.column_keys)
        return found

    def _run(self, compiled: _Compiled, connection: Connection, params: dict[str, Any]) -> Any:
        values = compiled.parameters(params)
        driver = connection.connection.driver_connection
        try:
            return driver.execute(compiled.sql, values)  # type: ignore[union-attr]
        except sqlite3.Error as error:
            # As Core raises it (IntegrityError for a constraint, OperationalError, ...).
            raise DBAPIError.instance(compiled.sql, values, error, sqlite3.Error) from error

    def first(self, connection: Connection, params: dict[str, Any]) -> tuple | None:
        compiled = self._for(connection)
        if compiled is None:
            row = connection.execute(self.statement, params).first()
            return None if row is None else tuple(row)
        return compiled.row(self._run(compiled, connection, params).fetchone())

    def scalar(self, connection: Connection, params: dict[str, Any]) -> Any:
        row = self.first(connection, params)
        return None if row is None else row[0]

    def insert(self, connection: Connection, params: dict[str, Any]) -> int:
        """Run an INSERT of one row; its integer primary key."""
        compiled = self._for(connection)
        if compiled is None:
            key = connection.execute(self.statement, params).inserted_primary_key
            assert key is not None
            return int(key[0])
        cursor = self._run(compiled, connection, params)
        return int(cursor.lastrowid)


# FTS5 virtual tables live in migrations only (SQLAlchemy has no type for them). Their names
# and the shadow tables SQLite makes for each are left out of the models-vs-migrations
# comparison (`kiosk db check`, autogenerate, tests/services/test_migrations.py).
FTS5_SHADOW_SUFFIXES = ("", "_data", "_idx", "_content", "_docsize", "_config")


def fts_table_names() -> set[str]:
    from kiosk.catalogue.models import FTS_TABLES

    return {name + suffix for name in FTS_TABLES for suffix in FTS5_SHADOW_SUFFIXES}


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's filter: skip a reflected FTS5 table that no model declares (and nothing else)."""
    return not (type_ == "table" and reflected and compare_to is None and name in fts_table_names())
