"""Distinct people over any range of days, exact, for the district dashboard's custom periods.

Every scope the dashboard shows a distinct-people figure for — each centre itself ("c<id>"),
each branch with its centres ("b<id>", for a centre with children), the centres of one level in
a branch ("l<letter><id>") — numbers its people densely (hub_people_ordinal: 0, 1, 2, … in the
order the scope first saw them). Per scope, day and chunk of CHUNK numbers, hub_people_bits
holds a bit string with the bit of each person who came that day, and hub_people_month_bits the
same OR-ed over each calendar month. Distinct people in [a, b) is then, per scope, the sum over
its chunks of bit_count(bit_or(bits)) over the whole months and the days around them: 365
rolling days of a centre with 1,500 people read 11 + 30 rows of 256 bytes, not its ~10,000
person-days, and the district's total 132 × 41 rows, not 2.1 M (docs/sync.md, "Distinct people
over any days").

The bits are filed from hub_person_day (what the earlier query counted, so erasures and undone
check-ins count exactly as before) by catch_up(): rows not yet counted (counted = false, a
partial index) are flagged and filed in one transaction under an advisory lock, whenever and in
whatever order their inserts commit. A counted row that is changed or deleted (an erasure
relinks a person's days to a token) is queued in hub_person_day_gone by a trigger, and catch_up
clears the person's bit wherever no other row of that scope and day has them.

PostgreSQL only (bit strings, bit_count); a SQLite demo hub counts from hub_person_day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from kiosk.centres.models import Centre
from kiosk.hub.models import PEOPLE_CHUNK, HubPeopleBits, HubPeopleCentre, HubPeopleMonthBits, HubPeopleOrdinal, HubPersonDay, HubPersonDayGone
from kiosk.hub.services import LEVEL_LETTERS

CHUNK = PEOPLE_CHUNK
LOCK_KEY = 0x70656F706C65  # pg_advisory_xact_lock: one catch-up at a time ("people")


def available(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def centre_scope(centre_id: int) -> str:
    return f"c{centre_id}"


def branch_scope(root_id: int, level: str = "") -> str:
    """The scope of the centres in ``root_id``'s branch (of one level when ``level``)."""
    return f"l{LEVEL_LETTERS.get(level, 'x')}{root_id}" if level else f"b{root_id}"


def tree_scopes(session: Session) -> dict[int, str]:
    """Each centre's scopes in today's tree, space-separated: itself, then for its own branch
    (when it has children) and each ancestor's, the branch and the branch's centres of its level."""
    centres = session.execute(select(Centre.id, Centre.parent_id, Centre.level)).all()
    parent = {c.id: c.parent_id for c in centres}
    with_children = {c.parent_id for c in centres if c.parent_id is not None}
    found: dict[int, str] = {}
    for centre in centres:
        branches = [centre.id] if centre.id in with_children else []
        up = parent.get(centre.id)
        while up is not None and up not in branches and up != centre.id and len(branches) < 64:  # a loop ends the walk
            branches.append(up)
            up = parent.get(up)
        level = centre.level.value
        found[centre.id] = " ".join([centre_scope(centre.id)] + [branch_scope(b) for b in branches] + [branch_scope(b, level) for b in branches])
    return found


def filed_scopes(session: Session) -> dict[int, str]:
    return {centre_id: scopes for centre_id, scopes in session.execute(select(HubPeopleCentre.centre_id, HubPeopleCentre.scopes))}


def stale(session: Session) -> bool:
    """True when a centre's days were filed under other branches than today's tree gives it
    (a centre moved, a level changed): branch totals are then counted from hub_person_day."""
    today = tree_scopes(session)
    return any(set(today.get(centre_id, "").split()) != set(scopes.split()) for centre_id, scopes in filed_scopes(session).items())


_TEMP = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS people_days_added (day date, centre_id integer, person varchar(64)) ON COMMIT DELETE ROWS",
    "CREATE TEMPORARY TABLE IF NOT EXISTS people_days_gone (day date, centre_id integer, person varchar(64)) ON COMMIT DELETE ROWS",
    "CREATE TEMPORARY TABLE IF NOT EXISTS people_days_scope (centre_id integer, scope varchar(24)) ON COMMIT DELETE ROWS",
    f"CREATE TEMPORARY TABLE IF NOT EXISTS people_days_mask (scope varchar(24), day date, chunk integer, mask bit({CHUNK})) ON COMMIT DELETE ROWS",
)
_ONE = f"B'1'::bit({CHUNK})"  # a 1 then CHUNK - 1 zeros (a cast pads on the right)

_PENDING = text(
    # ORDER BY day: read from the partial index of uncounted rows, never a scan of the table
    "SELECT EXISTS (SELECT 1 FROM hub_person_day WHERE NOT counted ORDER BY day LIMIT 1) OR EXISTS (SELECT 1 FROM hub_person_day_gone)"
)
_TAKE_GONE = "WITH g AS (DELETE FROM hub_person_day_gone RETURNING day, centre_id, person) INSERT INTO people_days_gone SELECT * FROM g"
# Rows another transaction holds (an erasure relinking them) are left for the next catch-up
# (SKIP LOCKED): a dashboard request never waits on one, nor deadlocks with it.
_TAKE_PENDING = (
    "WITH a AS (UPDATE hub_person_day SET counted = true"
    " WHERE ctid = ANY(ARRAY(SELECT ctid FROM hub_person_day WHERE NOT counted ORDER BY day FOR UPDATE SKIP LOCKED)) AND NOT counted"
    " RETURNING day, centre_id, person) INSERT INTO people_days_added SELECT * FROM a"
)
# New people of each scope get the next numbers (only catch_up numbers, under the lock).
_NUMBER = """
    INSERT INTO hub_people_ordinal (scope, person, ordinal)
    SELECT n.scope, n.person,
           coalesce((SELECT max(o.ordinal) FROM hub_people_ordinal o WHERE o.scope = n.scope), -1)
           + row_number() OVER (PARTITION BY n.scope ORDER BY n.person)
    FROM (SELECT DISTINCT s.scope, a.person FROM people_days_added a JOIN people_days_scope s USING (centre_id)) n
    WHERE NOT EXISTS (SELECT 1 FROM hub_people_ordinal o WHERE o.scope = n.scope AND o.person = n.person)
    ORDER BY 1, 3
"""
# The bits of the added rows per scope, day and chunk, OR-ed into the day and the month rows.
_ADDED_MASKS = f"""
    INSERT INTO people_days_mask (scope, day, chunk, mask)
    SELECT s.scope, a.day, o.ordinal / {CHUNK}, bit_or({_ONE} >> (o.ordinal % {CHUNK}))
    FROM people_days_added a JOIN people_days_scope s USING (centre_id)
    JOIN hub_people_ordinal o ON o.scope = s.scope AND o.person = a.person
    GROUP BY 1, 2, 3
"""
_SET_DAYS = """
    INSERT INTO hub_people_bits (scope, day, chunk, bits) SELECT scope, day, chunk, mask FROM people_days_mask ORDER BY 1, 2, 3
    ON CONFLICT (scope, day, chunk) DO UPDATE SET bits = hub_people_bits.bits | excluded.bits
"""
_SET_MONTHS = """
    INSERT INTO hub_people_month_bits (scope, month, chunk, bits)
    SELECT scope, date_trunc('month', day)::date, chunk, bit_or(mask) FROM people_days_mask GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (scope, month, chunk) DO UPDATE SET bits = hub_people_month_bits.bits | excluded.bits
"""
# A gone row's person leaves a scope's day unless another counted row of that scope and day
# has them (found among the rows of the gone days whose person is gone somewhere: one pass over
# those days, not a probe per scope); the months of the days cleared are OR-ed again from their days.
_LOST_MASKS = f"""
    INSERT INTO people_days_mask (scope, day, chunk, mask)
    SELECT lost.scope, lost.day, o.ordinal / {CHUNK}, bit_or({_ONE} >> (o.ordinal % {CHUNK}))
    FROM (
        SELECT s.scope, g.day, g.person FROM people_days_gone g JOIN people_days_scope s USING (centre_id)
        EXCEPT
        SELECT t.scope, h.day, h.person FROM hub_person_day h JOIN people_days_scope t USING (centre_id)
        WHERE h.counted AND h.day IN (SELECT day FROM people_days_gone) AND h.person IN (SELECT person FROM people_days_gone)
    ) lost JOIN hub_people_ordinal o ON o.scope = lost.scope AND o.person = lost.person
    GROUP BY 1, 2, 3
"""
_CLEAR_DAYS = """
    UPDATE hub_people_bits b SET bits = b.bits & ~m.mask FROM people_days_mask m WHERE b.scope = m.scope AND b.day = m.day AND b.chunk = m.chunk
"""
_REDO_MONTHS = """
    UPDATE hub_people_month_bits m SET bits = (
        SELECT bit_or(d.bits) FROM hub_people_bits d
        WHERE d.scope = m.scope AND d.chunk = m.chunk AND d.day >= m.month AND d.day < (m.month + interval '1 month')::date
    )
    WHERE (m.scope, m.month, m.chunk) IN (SELECT scope, date_trunc('month', day)::date, chunk FROM people_days_mask)
"""


def catch_up(session: Session) -> int:
    """File the hub_person_day rows not counted yet, and take out the gone ones; how many rows
    were filed. Call it inside a unit of work (kiosk.db.write_transaction): the rows are flagged
    and filed in the same transaction. A no-op on SQLite."""
    if not available(session):
        return 0
    if not session.scalar(_PENDING):
        return 0
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    for statement in _TEMP:
        session.execute(text(statement))
    filed = filed_scopes(session)
    new = {centre_id: scopes for centre_id, scopes in tree_scopes(session).items() if centre_id not in filed}
    if new:  # a centre's first days: filed under its place in today's tree from now on
        session.add_all(HubPeopleCentre(centre_id=centre_id, scopes=scopes) for centre_id, scopes in new.items())
        session.flush()
        filed |= new
    pairs = [(centre_id, scope) for centre_id, scopes in filed.items() for scope in scopes.split()]
    session.execute(
        text("INSERT INTO people_days_scope (centre_id, scope) SELECT * FROM unnest(CAST(:centres AS integer[]), CAST(:scopes AS text[]))"),
        {"centres": [c for c, _s in pairs], "scopes": [s for _c, s in pairs]},
    )
    session.execute(text(_TAKE_GONE))
    added = session.execute(text(_TAKE_PENDING)).rowcount
    session.execute(text("ANALYZE people_days_added, people_days_gone"))  # a night's rows or a year's: plan for what is there
    session.execute(text(_NUMBER))
    for statement in (_ADDED_MASKS, _SET_DAYS, _SET_MONTHS, "TRUNCATE people_days_mask", _LOST_MASKS, _CLEAR_DAYS, _REDO_MONTHS):
        session.execute(text(statement))
    return int(added or 0)


def rebuild(session: Session) -> int:
    """File every hub_person_day row again under today's tree (after a centre moved to another
    branch or changed level); how many rows. Inside a unit of work; as slow as the migration's
    backfill (docs/benchmarks.md)."""
    if not available(session):
        return 0
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    for model in (HubPeopleBits, HubPeopleMonthBits, HubPeopleOrdinal, HubPeopleCentre, HubPersonDayGone):
        session.execute(delete(model))
    session.execute(update(HubPersonDay).values(counted=False))
    return catch_up(session)


_COUNT = text(
    "WITH chunks AS (SELECT scope, bit_count(bit_or(bits)) AS people FROM ("
    " SELECT scope, chunk, bits FROM hub_people_month_bits WHERE scope = ANY(:scopes) AND month >= :first AND month < :last"
    " UNION ALL SELECT scope, chunk, bits FROM hub_people_bits WHERE scope = ANY(:scopes)"
    " AND (day >= :start AND day < least(:first, :end) OR day >= greatest(:last, :start) AND day < :end)"
    ") rows GROUP BY scope, chunk)"
    " SELECT scope, sum(people) FROM chunks GROUP BY scope"
)


def _whole_months(start: date, end: date) -> tuple[date, date]:
    """[first, last): the calendar months inside [start, end) (first >= last when none)."""
    first = start if start.day == 1 else (start.replace(day=1) + timedelta(days=32)).replace(day=1)
    return first, end.replace(day=1)


def count(session: Session, centre_ids: Sequence[int], total_scope: str | None, start: date, end: date) -> tuple[dict[int, int], int | None]:
    """Distinct people over [start, end): per centre (each by itself), and in ``total_scope``
    (None: not asked); a centre nobody came to is left out. PostgreSQL, after catch_up()."""
    scopes = [centre_scope(c) for c in centre_ids] + ([total_scope] if total_scope else [])
    first, last = _whole_months(start, end)
    if first >= last:
        first = last = end  # no whole month: every day from the day rows
    found = {scope: int(people) for scope, people in session.execute(_COUNT, {"scopes": scopes, "start": start, "end": end, "first": first, "last": last})}
    per_centre = {c: found[centre_scope(c)] for c in centre_ids if found.get(centre_scope(c))}
    return per_centre, (found.get(total_scope, 0) if total_scope else None)
