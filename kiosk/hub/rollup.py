"""The dashboard's roll-ups, kept off the push (issue 13, docs/sync.md "Roll-ups off the push").

A push (kiosk.hub.services.ingest) inserts its events and records, in the same transaction, one
``hub_rollup_queue`` row: the centre and the range of ``hub_event`` ids it inserted. This module
applies queued batches to every roll-up the dashboard reads (hub_daily, hub_monthly,
hub_person_day, hub_people, hub_people_count) and deletes their queue rows in one transaction, so
a crash never counts a batch twice nor loses one. A transaction-level advisory lock serialises
roll-ups: two hub workers never apply the same batch (and never meet on the shared branch rows).

When it runs:
- just after a push, off the request: each hub worker process has one background thread
  (``Roller``) that the push wakes after its commit; it waits ``HUB_ROLLUP_DELAY`` seconds
  (0.25) to gather the batches that follow, then catches up everything queued (any centre's);
- synchronously before every dashboard read and export (``catch_up`` in kiosk.hub.views), so the
  district always sees every acknowledged event;
- inside a push that carries an erasure (``privacy.erased``), for that centre, before the hub
  forgets the person (services.forget_erased_people relinks rows that must already be there);
- `kiosk hub rollup` (an operator, after a restore or an outage).

Roll-ups are sums and set unions, so batches may be applied in any order. A SQLite demo hub keeps
its roll-ups in the push (kiosk.hub.services._roll_up) and has nothing queued.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from kiosk.db import write_transaction

log = logging.getLogger("kiosk.hub")

ROLLUP_LOCK = 7_000_002  # pg_advisory_xact_lock key (publications use 7_000_001)
MAX_EVENTS_PER_UNIT = 20_000  # one catch-up transaction applies at most this many events
DEFAULT_DELAY = 0.25  # seconds the background thread waits to gather the batches that follow


@dataclass
class Applied:
    batches: int = 0
    events: int = 0

    def __iadd__(self, other: Applied) -> Applied:
        self.batches += other.batches
        self.events += other.events
        return self


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _driver(session: Session) -> Any:
    return session.connection().connection.driver_connection


def pending(session: Session) -> Applied:
    """Batches (and their events) acknowledged but not yet in the roll-ups."""
    if not _postgres(session):
        return Applied()
    with _driver(session).cursor() as cursor:
        batches, events = cursor.execute("SELECT count(*), coalesce(sum(events), 0) FROM hub_rollup_queue").fetchone()
    return Applied(int(batches), int(events))


def catch_up(session: Session) -> Applied:
    """Apply every batch queued when it is called, one unit of work (write_transaction) per at
    most MAX_EVENTS_PER_UNIT events; what it applied. Batches queued meanwhile may be applied
    too, but it never chases an endless stream of pushes."""
    done = Applied()
    if not _postgres(session):
        return done
    with write_transaction(session), _driver(session).cursor() as cursor:
        (last,) = cursor.execute("SELECT max(id) FROM hub_rollup_queue").fetchone()
    if last is None:
        return done
    while True:
        with write_transaction(session):
            step = apply_queued(session, up_to=int(last))
        if not step.batches:
            return done
        done += step


def apply_queued(session: Session, *, centre_id: int | None = None, up_to: int | None = None, max_events: int | None = MAX_EVENTS_PER_UNIT) -> Applied:
    """In the caller's transaction: take the roll-up lock (waiting for a roll-up in progress),
    apply the queued batches, oldest first (only ``centre_id``'s when given, only ids ``<= up_to``
    when given, at least one and at most about ``max_events`` events), to every roll-up and
    delete their queue rows. Committed with the caller's transaction, or not at all."""
    from kiosk.hub.services import PERSON_DAY_TYPE, level_kind

    done = Applied()
    with _driver(session).cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK,))
        # Read after the lock: a roll-up that held it has committed, and this statement's
        # snapshot sees its deletions.
        queued = cursor.execute(
            "SELECT id, centre_id, first_id, last_id, events FROM hub_rollup_queue"
            " WHERE (%(centre)s::int IS NULL OR centre_id = %(centre)s) AND (%(up_to)s::bigint IS NULL OR id <= %(up_to)s) ORDER BY id",
            {"centre": centre_id, "up_to": up_to},
        ).fetchall()
        by_centre: dict[int, list[tuple[int, int, int]]] = {}
        for queue_id, centre, first_id, last_id, events in queued:
            if max_events is not None and done.batches and done.events + events > max_events:
                break
            by_centre.setdefault(centre, []).append((queue_id, first_id, last_id))
            done.batches += 1
            done.events += events
        for centre, batches in sorted(by_centre.items()):
            scope_ids, level = _scopes_and_level(cursor, centre)
            cursor.execute(
                _ROLL_UP,
                {
                    "centre": centre,
                    "first": [first for _id, first, _last in batches],
                    "last": [last for _id, _first, last in batches],
                    "person_type": PERSON_DAY_TYPE,
                    "scopes": scope_ids,
                    "level_month": level_kind(level, "m"),
                    "level_year": level_kind(level, "y"),
                },
                prepare=True,  # planned once per connection
            )
            cursor.execute("DELETE FROM hub_rollup_queue WHERE id = ANY(%s)", ([queue_id for queue_id, _f, _l in batches],))
    return done


def _scopes_and_level(cursor: Any, centre_id: int) -> tuple[list[int], str]:
    """The centre and its ancestors, nearest first (a loop in the tree ends the walk), and its
    level."""
    ancestors, level = cursor.execute(_ANCESTORS_AND_LEVEL, {"centre": centre_id}).fetchone()
    found = [centre_id]
    for scope_id in ancestors or []:
        if scope_id in found:
            break
        found.append(scope_id)
    return found, str(level or "")


_ANCESTORS_AND_LEVEL = (
    "SELECT ARRAY(WITH RECURSIVE up (id, parent_id, depth) AS ("
    " SELECT id, parent_id, 0 FROM centre WHERE id = c.id"
    " UNION ALL SELECT p.id, p.parent_id, up.depth + 1 FROM centre p JOIN up ON p.id = up.parent_id WHERE up.depth < 64"
    ") SELECT id FROM up WHERE depth > 0 ORDER BY depth), c.level FROM centre c WHERE c.id = %(centre)s"
)

# An event's points as services._points reads them from the payload: a JSON integer (the push
# refuses one beyond ±10^9, so at most 10 digits), else 0. A float is stored as Python dumps it
# (1e+16, 100.0) and jsonb prints it with a fraction or as a long integer: not matched, 0 points,
# as in Python; a string or a boolean is not a number.
POINTS = (
    "CASE WHEN jsonb_typeof(e.payload -> 'points') = 'number' AND e.payload ->> 'points' ~ '^-?[0-9]{1,10}$' THEN (e.payload ->> 'points')::bigint ELSE 0 END"
)

# One centre's queued batches into every roll-up, in one statement. The distinct-people
# roll-ups cascade: a new person-day inserts the centre's month row; only people new to the
# centre that month can be new in its year or to a branch in that month (a repeat visitor costs
# one index probe), and only people new to a branch that month to its year row.
_ROLL_UP = f"""WITH batch AS MATERIALIZED (
        SELECT e.centre_id, e.day, e.type, e.person, {POINTS} AS points
        FROM unnest(%(first)s::bigint[], %(last)s::bigint[]) AS r (first_id, last_id)
        JOIN hub_event e ON e.id BETWEEN r.first_id AND r.last_id
        WHERE e.centre_id = %(centre)s
    ), counted AS (
        SELECT centre_id, day, type, count(*) AS events, coalesce(sum(points), 0) AS points FROM batch GROUP BY centre_id, day, type
    ), daily AS (
        INSERT INTO hub_daily (centre_id, day, type, events, points) SELECT centre_id, day, type, events, points FROM counted
        ON CONFLICT (centre_id, day, type)
        DO UPDATE SET events = hub_daily.events + excluded.events, points = hub_daily.points + excluded.points
    ), monthly AS (
        INSERT INTO hub_monthly (centre_id, month, type, events, points)
        SELECT centre_id, date_trunc('month', day)::date, type, sum(events), sum(points) FROM counted GROUP BY 1, 2, 3
        ON CONFLICT (centre_id, month, type)
        DO UPDATE SET events = hub_monthly.events + excluded.events, points = hub_monthly.points + excluded.points
    ), people AS (
        INSERT INTO hub_person_day (day, centre_id, person)
        SELECT DISTINCT day, centre_id, person FROM batch WHERE type = %(person_type)s AND person IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING day, person
    ), month_own AS (
        INSERT INTO hub_people (scope_id, kind, start, person)
        SELECT DISTINCT %(centre)s::int, 'm'::text, date_trunc('month', day)::date, person FROM people
        ON CONFLICT DO NOTHING
        RETURNING scope_id, kind, start, person
    ), year_own AS (
        INSERT INTO hub_people (scope_id, kind, start, person)
        SELECT DISTINCT scope_id, 'y'::text, date_trunc('year', start)::date, person FROM month_own
        ON CONFLICT DO NOTHING
        RETURNING scope_id, kind, start
    ), month_branch AS (
        INSERT INTO hub_people (scope_id, kind, start, person)
        SELECT DISTINCT s.scope_id, 'bm'::text, m.start, m.person FROM month_own m CROSS JOIN unnest(%(scopes)s::int[]) AS s (scope_id)
        ON CONFLICT DO NOTHING
        RETURNING scope_id, kind, start, person
    ), year_branch AS (
        INSERT INTO hub_people (scope_id, kind, start, person)
        SELECT DISTINCT scope_id, 'by'::text, date_trunc('year', start)::date, person FROM month_branch
        ON CONFLICT DO NOTHING
        RETURNING scope_id, kind, start
    ), month_level AS (
        -- The same per branch and level of centre (the dashboard's level filter).
        INSERT INTO hub_people (scope_id, kind, start, person)
        SELECT DISTINCT s.scope_id, %(level_month)s::text, m.start, m.person FROM month_own m CROSS JOIN unnest(%(scopes)s::int[]) AS s (scope_id)
        ON CONFLICT DO NOTHING
        RETURNING scope_id, kind, start, person
    ), year_level AS (
        INSERT INTO hub_people (scope_id, kind, start, person)
        SELECT DISTINCT scope_id, %(level_year)s::text, date_trunc('year', start)::date, person FROM month_level
        ON CONFLICT DO NOTHING
        RETURNING scope_id, kind, start
    ), periods AS (
        SELECT scope_id, kind, start FROM month_own
        UNION ALL SELECT scope_id, kind, start FROM year_own
        UNION ALL SELECT scope_id, kind, start FROM month_branch
        UNION ALL SELECT scope_id, kind, start FROM year_branch
        UNION ALL SELECT scope_id, kind, start FROM month_level
        UNION ALL SELECT scope_id, kind, start FROM year_level
    ), counts AS (
        INSERT INTO hub_people_count (scope_id, kind, start, people)
        SELECT scope_id, kind, start, count(*) FROM periods GROUP BY 1, 2, 3
        ON CONFLICT (scope_id, kind, start) DO UPDATE SET people = hub_people_count.people + excluded.people
    )
    SELECT count(*) FROM batch"""


class Roller:
    """The background roll-up of one hub process: a daemon thread, started at the first wake
    in the process that wakes it (a gunicorn worker forked after the app was made starts its
    own), that catches up whenever a push has committed. A failure is logged and the batches
    stay queued for the next wake, the dashboard or `kiosk hub rollup`."""

    def __init__(self, app: Flask, delay: float = DEFAULT_DELAY):
        self.app = app
        self.delay = delay
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def wake(self) -> None:
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._wake = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._wake,), name="hub-rollup", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self, wake: threading.Event) -> None:
        from kiosk.extensions import db

        while True:
            wake.wait()
            time.sleep(self.delay)  # the batches that follow join this roll-up
            wake.clear()
            with self.app.app_context():
                try:
                    catch_up(db.session)
                    catch_up_people_days(db.session)
                except Exception:  # the batches stay queued; the next wake or reader retries
                    log.exception("hub roll-up failed; the batches stay queued")
                finally:
                    db.session.remove()


def catch_up_people_days(session: Session) -> int:
    """File the person-days the roll-ups just wrote into the distinct-people bit strings
    (kiosk.hub.people_days), so the first custom range read after a night's pushes does not pay
    for it (~1 s for 200 centres' night). The dashboard still catches up itself before reading."""
    from kiosk.hub import people_days  # people_days imports services, which imports this module's callers

    with write_transaction(session):
        return people_days.catch_up(session)


def setup(app: Flask) -> None:
    """A Roller for a hub on PostgreSQL, unless HUB_ROLLUP_DELAY is negative (then only the
    dashboard, erasures and `kiosk hub rollup` catch up)."""
    delay = float(app.config.get("HUB_ROLLUP_DELAY", DEFAULT_DELAY))
    if delay >= 0 and str(app.config.get("SQLALCHEMY_DATABASE_URI", "")).startswith("postgresql"):
        app.extensions["kiosk.hub.roller"] = Roller(app, delay)


def wake(app: Flask) -> None:
    """After a push committed: let this process's roller catch up soon."""
    roller = app.extensions.get("kiosk.hub.roller")
    if roller is not None:
        roller.wake()
