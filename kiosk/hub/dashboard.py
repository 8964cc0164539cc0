"""The district dashboard's figures: the 1+11+N tree with per-centre figures for a period.

Additive figures come from hub_monthly for whole months and hub_daily for the days around them
(kept at ingest); distinct people for a calendar month or year from the counts kept at ingest
(hub_people_count, per centre and per branch), for other periods from the per-day bit strings of
kiosk.hub.people_days (on SQLite, or a tree changed since they were filed, from hub_person_day).
The cost grows with centres × months, not with events (bench/sync.py, docs/benchmarks.md).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, text, union_all
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.centres.models import Centre, CentreLevel
from kiosk.db import utcnow, write_transaction
from kiosk.hub import people_days, rollup
from kiosk.hub.models import HubCentre, HubConflict, HubDaily, HubMonthly, HubPeople, HubPeopleCount, HubPersonDay, HubRole, HubUser
from kiosk.hub.services import HubError, level_kind
from kiosk.i18n import _l

SILENT_AFTER = timedelta(hours=48)  # more than 2 nights without a push

# Which event types feed which figure (types of features not yet landed are listed so their
# events count as soon as kiosks send them).
ATTENDED = "checkin.created"
UNDONE = "checkin.undone"
BOOKED = ("booking.created",)
SERVED = ("booking.served",)
NO_SHOW = ("booking.no_show",)
VOLUNTEER_HOURS = ("volunteer.hours",)
LOANS = ("catalogue.loan",)
BOOKS = ("catalogue.added",)
MEMBERS = ("member.registered",)
AWARDED = ("checkin.created", "checkin.undone", "points.corrected")
REDEEMED = ("points.redeemed", "points.redemption_cancelled")

COLUMNS = (
    ("attendances", _l("Attendances (人次)")),
    ("people", _l("Distinct people")),
    ("new_members", _l("New members")),
    ("booked", _l("Services booked")),
    ("served", _l("Served")),
    ("no_shows", _l("No-shows")),
    ("volunteer_hours", _l("Volunteer hours")),
    ("points_awarded", _l("Points awarded")),
    ("points_redeemed", _l("Points redeemed")),
    ("books", _l("Books added")),
    ("loans", _l("Loans")),
)


def create_user(session: Session, username: str, password: str, role: str, centre_code: str | None, display_name: str = "") -> HubUser:
    username = (username or "").strip().lower()
    if not 3 <= len(username) <= 40 or len(password or "") < 10:
        raise HubError("bad_user", _l("A username of 3 to 40 characters and a password of at least 10 are needed."))
    hub_role = HubRole(role)
    centre = None
    if hub_role == HubRole.SUBDISTRICT:
        centre = session.scalar(select(Centre).where(Centre.code == (centre_code or "")))
        if centre is None:
            raise HubError("unknown_centre", _l("A sub-district admin needs the code of their centre."), field="centre")
    if session.scalar(select(HubUser).where(HubUser.username == username)) is not None:
        raise HubError("duplicate_user", _l("This username is taken."), field="username")
    user = HubUser(
        username=username, password_hash=generate_password_hash(password), role=hub_role, centre_id=centre.id if centre else None, display_name=display_name
    )
    session.add(user)
    session.flush()
    return user


def check_login(session: Session, username: str, password: str) -> HubUser | None:
    user = session.scalar(select(HubUser).where(HubUser.username == (username or "").strip().lower(), HubUser.active.is_(True)))
    if user is None or not check_password_hash(user.password_hash, password or ""):
        return None
    return user


@dataclass
class Row:
    centre: Centre
    depth: int
    figures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last_sync: datetime | None = None
    enrolled: bool = False
    silent: bool = False
    conflicts: int = 0


@dataclass
class Report:
    start: date
    end: date  # exclusive
    rows: list[Row]
    totals: dict[str, int]
    by_day: list[tuple[date, int]]  # attendances per day, the chart


def visible_centres(session: Session, user: HubUser) -> list[tuple[Centre, int]]:
    """The tree in display order with depths, cut to the user's branch."""
    centres = list(session.scalars(select(Centre).order_by(Centre.code)))
    children: dict[int | None, list[Centre]] = defaultdict(list)
    for centre in centres:
        children[centre.parent_id].append(centre)
    roots = [c for c in centres if c.id == user.centre_id] if user.role == HubRole.SUBDISTRICT else children[None]
    ordered: list[tuple[Centre, int]] = []

    def walk(centre: Centre, depth: int) -> None:
        ordered.append((centre, depth))
        for child in children[centre.id]:
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return ordered


def report(session: Session, user: HubUser, start: date, end: date, *, level: str = "", now: datetime | None = None) -> Report:
    now = now or utcnow()
    # Every acknowledged event is in what the district reads: apply queued pushes first
    # (kiosk.hub.rollup; a no-op when the background roll-up has caught up).
    rollup.catch_up(session)
    kind = _calendar_period(start, end)
    if not kind and people_days.available(session):
        # Before anything is loaded: the unit of work's commit expires what the session holds
        # (the tree's centres would then be read again one by one).
        with write_transaction(session):
            people_days.catch_up(session)
    tree = visible_centres(session, user)
    roots = [c.id for c, depth in tree if depth == 0]  # the branches shown, before any filter
    if level:
        tree = [(c, d) for c, d in tree if c.level == CentreLevel(level)]
    ids = [c.id for c, _d in tree]
    rows = {c.id: Row(c, d) for c, d in tree}
    for centre_id, type_, events, points in _sums(session, ids, start, end):
        _add(rows[centre_id].figures, type_, int(events or 0), int(points or 0))
    if kind:
        own = HubPeopleCount.kind == kind
        for centre_id, count in session.execute(
            select(HubPeopleCount.scope_id, HubPeopleCount.people).where(HubPeopleCount.scope_id.in_(ids), own, HubPeopleCount.start == start)
        ):
            rows[centre_id].figures["people"] = int(count)
    counted_total = None
    if not kind:
        people, counted_total = _people_over_days(session, ids, roots, level, start, end)
        for centre_id, count in people.items():
            rows[centre_id].figures["people"] = count
    for state in session.scalars(select(HubCentre).where(HubCentre.centre_id.in_(ids))):
        row = rows[state.centre_id]
        row.enrolled, row.last_sync = True, state.last_push_at
        row.silent = state.last_push_at is None or now - state.last_push_at > SILENT_AFTER
    for centre_id, count in session.execute(select(HubConflict.centre_id, func.count()).where(HubConflict.centre_id.in_(ids)).group_by(HubConflict.centre_id)):
        rows[centre_id].conflicts = int(count)
    totals: dict[str, int] = defaultdict(int)
    for row in rows.values():
        for key, _label in COLUMNS:
            totals[key] += row.figures.get(key, 0)
    # Someone who came to two centres is one person in the total.
    totals["people"] = counted_total if counted_total is not None else _distinct_total(session, roots, ids, start, end, kind, level)
    per_day = dict(
        session.execute(
            select(HubDaily.day, func.sum(HubDaily.events))
            .where(HubDaily.centre_id.in_(ids), HubDaily.type == ATTENDED, HubDaily.day >= start, HubDaily.day < end)
            .group_by(HubDaily.day)
        ).all()
    )
    days = [(start + timedelta(days=i), int(per_day.get(start + timedelta(days=i), 0))) for i in range((end - start).days)]
    return Report(start, end, [rows[c.id] for c, _d in tree], dict(totals), days)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _calendar_period(start: date, end: date) -> str | None:
    """ "m" or "y" when [start, end) is one calendar month or year (kept as counts), else None."""
    if start.day == 1 and end == _next_month(start):
        return "m"
    if (start.month, start.day) == (1, 1) and end == start.replace(year=start.year + 1):
        return "y"
    return None


def _sums(session: Session, ids: list[int], start: date, end: date) -> list[tuple]:
    """(centre_id, type, events, points) over [start, end): whole months from hub_monthly, the
    days before and after them from hub_daily (a year reads ~12 rows per centre and type)."""
    first = start if start.day == 1 else _next_month(start)
    last = end.replace(day=1)
    parts = []
    if first < last:
        parts.append(
            select(HubMonthly.centre_id, HubMonthly.type, HubMonthly.events, HubMonthly.points).where(
                HubMonthly.centre_id.in_(ids), HubMonthly.month >= first, HubMonthly.month < last
            )
        )
        ranges = [(start, first), (last, end)]
    else:
        ranges = [(start, end)]
    for low, high in ranges:
        if low < high:
            parts.append(
                select(HubDaily.centre_id, HubDaily.type, HubDaily.events, HubDaily.points).where(
                    HubDaily.centre_id.in_(ids), HubDaily.day >= low, HubDaily.day < high
                )
            )
    both = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    return list(
        session.execute(select(both.c.centre_id, both.c.type, func.sum(both.c.events), func.sum(both.c.points)).group_by(both.c.centre_id, both.c.type))
    )


def _people_over_days(session: Session, ids: list[int], roots: list[int], level: str, start: date, end: date) -> tuple[dict[int, int], int]:
    """Distinct people per centre over [start, end) and over all of them (the centres of
    ``roots``' branches, of ``level`` when given). On PostgreSQL from the bit strings of
    kiosk.hub.people_days (report() brought them up to date); the total from hub_person_day
    when it is not one scope they keep (several roots) or the tree changed since they were filed."""
    if not people_days.available(session):
        people, counted = _people_from_person_days(session, ids, start, end)
        return dict(people), counted
    scope = _total_scope(session, ids, roots, level)
    per_centre, total = people_days.count(session, ids, scope, start, end)
    return per_centre, total if total is not None else _people_from_person_days(session, ids, start, end)[1]


def _total_scope(session: Session, ids: list[int], roots: list[int], level: str) -> str | None:
    """The people_days scope whose people are exactly those of the centres ``ids``, if any."""
    if len(ids) == 1:
        return people_days.centre_scope(ids[0])
    if len(roots) == 1 and ids and not people_days.stale(session):
        return people_days.branch_scope(roots[0], level)
    return None


def _people_from_person_days(session: Session, ids: list[int], start: date, end: date) -> tuple[list[tuple[int, int]], int]:
    """Distinct people per centre over [start, end) and over all of them, counted from
    hub_person_day: the (centre, person) pairs once, then both counts from the pairs. On
    PostgreSQL in one statement, with the memory for the hash of a year's pairs (at the default
    4 MB it spilled to disk: 2.5 s → 1.5 s for 200 centres' year, docs/benchmarks.md)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        found = session.execute(_PEOPLE_OVER_DAYS, {"ids": ids, "start": start, "end": end}).all()
        return [(c, n) for c, n in found if c is not None], int(next((n for c, n in found if c is None), 0))
    pairs = (
        select(HubPersonDay.centre_id, HubPersonDay.person)
        .distinct()
        .where(HubPersonDay.centre_id.in_(ids), HubPersonDay.day >= start, HubPersonDay.day < end)
        .subquery()
    )
    people = [(c, int(n)) for c, n in session.execute(select(pairs.c.centre_id, func.count()).group_by(pairs.c.centre_id))]
    total = session.scalar(select(func.count()).select_from(select(pairs.c.person).distinct().subquery()))
    return people, int(total or 0)


_PEOPLE_OVER_DAYS = text(
    "WITH pairs AS MATERIALIZED (SELECT DISTINCT centre_id, person FROM hub_person_day"
    " WHERE centre_id = ANY(:ids) AND day >= :start AND day < :end)"
    " SELECT centre_id, count(*) FROM pairs GROUP BY centre_id"
    " UNION ALL SELECT NULL, count(*) FROM (SELECT DISTINCT person FROM pairs) people"
)


def _distinct_total(session: Session, roots: list[int], ids: list[int], start: date, end: date, kind: str | None, level: str) -> int:
    """Distinct people over the shown centres: when they are one whole branch (``roots``), or
    its centres of one level, and the period a calendar month or year, the count kept at ingest
    for that branch (and level); else counted from the rows."""
    if kind and len(roots) == 1:
        kept = level_kind(level, kind) if level else "b" + kind
        count = session.scalar(
            select(HubPeopleCount.people).where(HubPeopleCount.scope_id == roots[0], HubPeopleCount.kind == kept, HubPeopleCount.start == start)
        )
        return int(count or 0)
    if kind:
        people = select(HubPeople.person).distinct().where(HubPeople.scope_id.in_(ids), HubPeople.kind == kind, HubPeople.start == start)
        return int(session.scalar(select(func.count()).select_from(people.subquery())) or 0)
    return _people_from_person_days(session, ids, start, end)[1]


def _add(figures: dict[str, int], type_: str, events: int, points: int) -> None:
    if type_ == ATTENDED:
        figures["attendances"] += events
    elif type_ == UNDONE:
        figures["attendances"] -= events
    if type_ in AWARDED:
        figures["points_awarded"] += points
    if type_ in REDEEMED:
        figures["points_redeemed"] -= points
    if type_ in MEMBERS:
        figures["new_members"] += events
    if type_ in BOOKED:
        figures["booked"] += events
    if type_ in SERVED:
        figures["served"] += events
    if type_ in NO_SHOW:
        figures["no_shows"] += events
    if type_ in VOLUNTEER_HOURS:
        figures["volunteer_hours"] += points
    if type_ in BOOKS:
        figures["books"] += events
    if type_ in LOANS:
        figures["loans"] += events


def period(kind: str, today: date, start_raw: str = "", end_raw: str = "") -> tuple[date, date]:
    """(start, end exclusive) of a named period, or of a custom range; bad input → this month."""
    if kind == "custom":
        try:
            start, end = date.fromisoformat(start_raw), date.fromisoformat(end_raw) + timedelta(days=1)
            if start < end and (end - start).days <= 3660:
                return start, end
        except ValueError:
            pass
    if kind == "day":
        return today, today + timedelta(days=1)
    if kind == "week":
        start = today - timedelta(days=today.weekday())
        return start, start + timedelta(days=7)
    if kind == "year":
        return date(today.year, 1, 1), date(today.year + 1, 1, 1)
    start = today.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def chart_bars(by_day: list[tuple[date, int]], width: int = 720, height: int = 160) -> list[dict]:
    """Bars of a server-rendered SVG chart (no script, no chart library)."""
    if not by_day:
        return []
    top = max(n for _d, n in by_day) or 1
    step = width / len(by_day)
    return [
        {
            "x": round(i * step, 1),
            "w": max(round(step * 0.8, 1), 1),
            "h": round(n / top * (height - 20), 1),
            "y": round(height - n / top * (height - 20), 1),
            "day": d,
            "n": n,
        }
        for i, (d, n) in enumerate(by_day)
    ]
