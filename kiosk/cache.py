"""When may something read from the database be kept in process? One shared answer.

Caches in this process (the booking availability, kiosk.booking.cache; the home tiles,
kiosk.home.services; the hub key, kiosk.sync.outbox) tag each entry with the *commit
generation* it was read under and use it only while the generation is still the same. The
generation moves on:
- when this process commits anything (any Session commit, a write_transaction or a
  grouped_write; writes are rare next to taps, so no finer tracking). The bump comes after
  the commit returned, so a reader cannot keep the old state past it;
- when another connection has committed to the database file: another server process on the
  same file, `kiosk` commands (`kiosk device revoke`), sync. SQLite's ``PRAGMA data_version``
  changes on a connection whenever *another* connection commits; each pooled connection keeps
  the value it last saw, and the first request to see it differ moves the generation on (a
  connection never seen before counts as a change). A connection's own commits do not change
  its data_version, so every commit through SQLAlchemy, a Session's or a Core
  ``engine.begin()`` / ``connection.commit()`` outside any Session alike, makes that connection
  forget the value it saw (the engine-level ``commit`` event): the first check through it
  afterwards moves the generation on, as does the first check through any other connection.

A value read at generation g and stored only if the generation is still g (``store_ok``) was
read after every commit the check saw: a commit landing in between makes the store a no-op.
On any database other than SQLite there is no generation (None): no caching (the hub).
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session, scoped_session

_SEEN = "kiosk_data_version"


class CommitGeneration:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    @property
    def value(self) -> int:
        return self._value

    def bump(self) -> None:
        with self._lock:
            self._value += 1

    def check(self, session: Session | scoped_session[Session]) -> int | None:
        """The generation to read and store under, after looking for other connections'
        commits; None when this database cannot be watched (not SQLite: do not cache).

        Outside a transaction the check uses a pooled connection of its own in autocommit
        (no BEGIN, no session transaction): on a request that reads nothing else (the kiosk
        home page) this is the only database access."""
        if isinstance(session, scoped_session):
            session = session()
        if session.in_transaction():
            connection = session.connection()
            if connection.dialect.name != "sqlite":
                return None
            version = connection.exec_driver_sql("PRAGMA data_version").scalar()
            self._see(connection.info, int(version or 0))
            return self._value
        else:
            engine = session.get_bind()
            if engine.dialect.name != "sqlite":
                return None
            raw = engine.raw_connection()  # type: ignore[union-attr]  # a session bound to an Engine
            try:
                cursor = raw.cursor()
                cursor.execute("PRAGMA data_version")
                row = cursor.fetchone()
                version = int(row[0]) if row else 0
                cursor.close()
                self._see(raw.info, version)
            finally:
                raw.close()
            return self._value

    def _see(self, info: dict, version: int) -> None:
        if info.get(_SEEN) != version:
            info[_SEEN] = version
            self.bump()


commit_generation = CommitGeneration()


@event.listens_for(Session, "after_commit")
def _after_commit(_session: Session) -> None:
    commit_generation.bump()


def forget_seen(info: dict) -> None:
    """A commit made on this connection outside SQLAlchemy's commit (kiosk.db's group commit on
    the DBAPI connection): its next check counts as a change, as after the engine's commit event."""
    info.pop(_SEEN, None)


@event.listens_for(Engine, "commit")
def _connection_commits(connection: Connection) -> None:
    """Any commit through SQLAlchemy (Session or Core): this connection's next check counts as
    a change. The event comes just before the commit itself; the connection is checked again
    only after it (a connection serves one thread at a time), and every other connection sees
    the commit in its data_version."""
    connection.info.pop(_SEEN, None)
