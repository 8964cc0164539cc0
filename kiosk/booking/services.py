"""Booking free services: schedules and slots, booking, the waitlist, tickets and the day's queue.

One entry point per action (book, join_waitlist, cancel, issue_walk_in, call_next, recall,
mark_served, mark_no_show, lift_block), each one serialised write (``write_transaction``:
BEGIN IMMEDIATE … COMMIT) that refuses with a BookingError or writes its rows, its outbox
event and its audit entry together. The database has the last word: ``booked = booked + 1
WHERE booked < capacity`` on the slot, UNIQUE ticket numbers per service and day, a UNIQUE
request key per confirmation screen.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sqlite3
import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from flask_babel import get_locale
from sqlalchemy import Connection, Date, Table, and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiosk.booking.models import (
    OPEN_STATUSES,
    BlockLift,
    Booking,
    BookingChannel,
    BookingStatus,
    ClosureDay,
    Provider,
    ProviderKind,
    ScheduleOverride,
    ScheduleTemplate,
    Service,
    ServiceCategory,
    Slot,
    TicketCounter,
    WaitlistEntry,
    WaitlistStatus,
)
from kiosk.db import UTCDateTime, grouped_write, utcnow, write_transaction
from kiosk.errors import KioskError
from kiosk.i18n import _l
from kiosk.identify.services import PhoneError, parse_phone
from kiosk.members.models import AgeBand, Member
from kiosk.points.models import PointsReason
from kiosk.points.services import award_points
from kiosk.signing import SIGNATURE_BYTES, TokenSigner, signer_from_config
from kiosk.staff.models import StaffUser
from kiosk.staff.services import record_audit
from kiosk.sync.outbox import last_hub_keys, person_field, person_field_for_key, record_event
from kiosk.timefmt import month_day_text
from kiosk.validation import clean_text, parse_whole_number

UTC = ZoneInfo("UTC")
TICKET_PREFIX = "B1"
TICKET_PURPOSE = "booking-ticket"
SLOT_KEY = re.compile(r"^\d{12}$")  # local YYYYMMDDHHMM
TICKET_TEXT = re.compile(r"^([A-Z])(\d{1,4})$")
MAX_SLOTS_PER_WINDOW = 96
ALTERNATIVES = 3
MAX_SERVED_MINUTES = 480


class BookingError(KioskError):
    # The person's waitlist news (take_waitlist_news), set where a refusal is shown with it.
    notices: tuple[str, ...] = ()


class SlotFullError(BookingError):
    """该时段已约满, with the next free slots to offer instead."""

    def __init__(self, alternatives: Sequence[SlotView], service_id: int, slot_key: str):
        super().__init__("slot_full", _l("This time is fully booked."), status=409)
        self.alternatives = list(alternatives)
        self.service_id = service_id
        self.slot_key = slot_key


@dataclass(frozen=True)
class BookingRules:
    """The configuration the services need (plain values: no Flask here)."""

    zone: ZoneInfo
    device_id: str
    district_key: str
    centre_code: str


def rules_from_config(config: Mapping[str, Any]) -> BookingRules:
    return BookingRules(
        zone=ZoneInfo(config["TIMEZONE"]),
        device_id=config["DEVICE_ID"],
        district_key=config["DISTRICT_KEY"] or config["SECRET_KEY"],
        centre_code=config["CENTRE_CODE"],
    )


def ticket_signer(config: Mapping[str, Any]) -> TokenSigner:
    return signer_from_config(config, TICKET_PURPOSE)


# ---- slots ----


@dataclass(frozen=True)
class SlotView:
    service_id: int
    day: date
    starts_at: datetime  # UTC
    ends_at: datetime
    capacity: int
    booked: int
    provider_id: int | None = None

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.booked)

    def key(self, zone: ZoneInfo) -> str:
        return self.starts_at.astimezone(zone).strftime("%Y%m%d%H%M")


@dataclass
class _Schedule:
    """A service's templates, overrides, closures and slot rows over a range of days (rows of
    their columns, not ORM objects)."""

    templates: Sequence[Any]  # ScheduleTemplate's columns
    overrides: dict[date, Any]  # ScheduleOverride's columns by day
    closures: set[date]
    booked: dict[datetime, int]  # a slot row's booked count by its start (UTC)


# The schedule's statements, built once: prebuilt Core reads of a few columns cost a fraction of
# ORM queries building objects (every booking and every uncached availability reads them).
_template_t = cast(Table, ScheduleTemplate.__table__)
_override_t = cast(Table, ScheduleOverride.__table__)
_closure_t = cast(Table, ClosureDay.__table__)
_first, _last = bindparam("first", type_=Date()), bindparam("last", type_=Date())
_TEMPLATES = select(_template_t).where(_template_t.c.service_id == bindparam("service_id"))
_OVERRIDES = select(_override_t).where(_override_t.c.service_id == bindparam("service_id"), _override_t.c.day.between(_first, _last))
_CLOSURES = select(_closure_t.c.day).where(_closure_t.c.day.between(_first, _last))
# Two columns, not Slot objects: a month of booked slots is ~600 rows, and building ORM
# instances for them was a third of the availability page's time (bench/booking.py).
_slot_table = cast(Table, Slot.__table__)
_SLOT_COUNTS = select(_slot_table.c.starts_at, _slot_table.c.booked).where(
    _slot_table.c.service_id == bindparam("service_id"), _slot_table.c.day.between(_first, _last)
)


def _load_schedule(session: Session, service: Service | ServiceRow, first: date, last: date, *, booked: bool = True) -> _Schedule:
    params = {"service_id": service.id, "first": first, "last": last}
    templates = session.execute(_TEMPLATES, params).all()
    overrides = {o.day: o for o in session.execute(_OVERRIDES, params)}
    closures = set(session.execute(_CLOSURES, params).scalars())
    counts: dict[datetime, int] = {}
    if booked:
        counts = {starts_at: count for starts_at, count in session.execute(_SLOT_COUNTS, params)}
    return _Schedule(templates, overrides, closures, counts)


# ---- the keypad's hot path in SQLite's own words ----
#
# A booking's statements (book(), _book_unit) run on the DBAPI connection of the session or of
# the unit of work (same transaction, same savepoints) without SQLAlchemy's per-statement work:
# ~70 µs of Python each through Core, ~10 µs this way (bench/booking.py: booking and check-in
# are CPU-bound on one core, so a booking's CPU sets its req/s). Booking lives on the kiosk's
# SQLite only. Values go in and come out as SQLAlchemy's SQLite types store them (_sql_day,
# _sql_moment; enums by value), so the rows are those the Core statements wrote
# (tests/services/test_booking.py compares the two on the same bookings).


def _raw(connection: Connection) -> Any:
    """The sqlite3 connection under a SQLAlchemy one (its transaction is the caller's)."""
    return connection.connection.driver_connection


@contextmanager
def _reads(session: Session) -> Iterator[Any]:
    """A pooled sqlite3 connection of its own for book()'s reads before the lock, outside any
    transaction (each statement on its own, no BEGIN): the session then has no read
    transaction to end before the unit of work's BEGIN IMMEDIATE. Nothing read here decides a
    race; the unit of work checks again under the lock."""
    pooled = session.get_bind().raw_connection()  # type: ignore[union-attr]  # a session bound to an Engine
    try:
        yield pooled.driver_connection
    finally:
        pooled.close()


def _sql_day(day: date) -> str:
    return day.isoformat()  # SQLAlchemy's SQLite DATE: YYYY-MM-DD


def _sql_moment(moment: datetime) -> str:
    """UTCDateTime as stored: UTC, SQLAlchemy's SQLite DATETIME format (microseconds always)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")  # strftime's "%Y-%m-%d %H:%M:%S.%f", at half its cost


def _moment(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw).replace(tzinfo=UTC) if raw is not None else None


@dataclass(frozen=True)
class _TemplateRow:
    weekday: int
    valid_from: date | None
    valid_until: date | None
    starts: time
    ends: time
    slot_minutes: int
    capacity: int
    provider_id: int | None


@dataclass(frozen=True)
class _OverrideRow:
    day: date
    closed: bool
    starts: time | None
    ends: time | None
    slot_minutes: int | None
    capacity: int | None
    provider_id: int | None


def _opt_date(raw: str | None) -> date | None:
    return date.fromisoformat(raw) if raw is not None else None


def _opt_time(raw: str | None) -> time | None:
    return time.fromisoformat(raw) if raw is not None else None


def _day_schedule(rows: Sequence[Sequence[Any]], day: date) -> _Schedule:
    """_load_schedule(…, day, day, booked=False) from the rows of _PLAN_READ_SQL's schedule
    column: one day's templates (kind 0), override (1) and closure (2), no slot rows. Sorted by
    kind and id here (json_group_array keeps no order SQLite promises): the templates' order
    decides which window wins (_windows, _slot_at)."""
    templates, overrides, closures = [], {}, set()
    for kind, _id, a, b, c, starts, ends, minutes, capacity, provider in sorted(rows, key=_kind_and_id):
        if kind == 0:  # weekday, valid_from, valid_until
            templates.append(_TemplateRow(a, _opt_date(b), _opt_date(c), time.fromisoformat(starts), time.fromisoformat(ends), minutes, capacity, provider))
        elif kind == 1:  # closed, day (one override a day: UNIQUE)
            overrides[day] = _OverrideRow(date.fromisoformat(b), bool(a), _opt_time(starts), _opt_time(ends), minutes, capacity, provider)
        else:
            closures.add(day)
    return _Schedule(templates, overrides, closures, {})


def _kind_and_id(row: Sequence[Any]) -> tuple[int, int]:
    return row[0], row[1]


def _windows(service: Service | ServiceRow, schedule: _Schedule, day: date) -> list[tuple[time, time, int, int, int | None]]:
    """(starts, ends, slot minutes, capacity, provider) for one day, after overrides and closures."""
    if day in schedule.closures:
        return []
    weekly = [
        t
        for t in schedule.templates
        if t.weekday == day.weekday() and (t.valid_from is None or t.valid_from <= day) and (t.valid_until is None or day <= t.valid_until)
    ]
    override = schedule.overrides.get(day)
    if override is not None:
        if override.closed or override.starts is None or override.ends is None:
            return []
        base = weekly[0] if weekly else None
        return [
            (
                override.starts,
                override.ends,
                override.slot_minutes or (base.slot_minutes if base else service.duration_minutes),
                override.capacity or (base.capacity if base else 1),
                override.provider_id or (base.provider_id if base else None),
            )
        ]
    return [(t.starts, t.ends, t.slot_minutes, t.capacity, t.provider_id) for t in weekly]


def _day_slots(service: Service | ServiceRow, schedule: _Schedule, day: date, zone: ZoneInfo) -> list[SlotView]:
    slots: dict[datetime, SlotView] = {}
    for starts, ends, minutes, capacity, provider_id in _windows(service, schedule, day):
        start = datetime.combine(day, starts, zone)
        end_of_window = datetime.combine(day, ends, zone)
        step = timedelta(minutes=minutes)
        if start.utcoffset() == end_of_window.utcoffset():
            # No change of UTC offset inside the window (always, in China): step in UTC.
            at, last = start.astimezone(UTC), end_of_window.astimezone(UTC)
            for _ in range(MAX_SLOTS_PER_WINDOW):
                end = at + step
                if end > last:
                    break
                booked = schedule.booked.get(at, 0)
                slots[at] = SlotView(service.id, day, at, end, max(capacity, booked), booked, provider_id)
                at = end
            continue
        for slot in _wall_time_slots(service.id, day, start, end_of_window, step, capacity, provider_id, schedule.booked):
            slots[slot.starts_at] = slot
    return [slots[k] for k in sorted(slots)]


def _wall_time_slots(
    service_id: int, day: date, start: datetime, end_of_window: datetime, step: timedelta, capacity: int, provider_id: int | None, booked: dict[datetime, int]
) -> Iterator[SlotView]:
    """A window's slots across a daylight-saving change: stepped in wall time."""
    for _ in range(MAX_SLOTS_PER_WINDOW):
        end_local = start + step
        if end_local > end_of_window:
            break
        at = start.astimezone(UTC)
        taken = booked.get(at, 0)
        yield SlotView(service_id, day, at, end_local.astimezone(UTC), max(capacity, taken), taken, provider_id)
        start = end_local


def _slot_at(service: Service | ServiceRow, schedule: _Schedule, day: date, zone: ZoneInfo, at: datetime) -> SlotView | None:
    """The slot of ``_day_slots(…)`` that starts at ``at`` (UTC), or None, without building the
    day's other slots (book() asks for one; building all twenty was ~40 µs of each booking)."""
    found = None
    for starts, ends, minutes, capacity, provider_id in _windows(service, schedule, day):
        start = datetime.combine(day, starts, zone)
        end_of_window = datetime.combine(day, ends, zone)
        step = timedelta(minutes=minutes)
        if start.utcoffset() == end_of_window.utcoffset():
            # As _day_slots steps in UTC: the n-th slot of the window (n < MAX_SLOTS_PER_WINDOW)
            # starts at first + n × step and must end by the window's end.
            index, rest = divmod(at - start.astimezone(UTC), step)
            if not rest and 0 <= index < MAX_SLOTS_PER_WINDOW and at + step <= end_of_window.astimezone(UTC):
                booked = schedule.booked.get(at, 0)
                found = SlotView(service.id, day, at, at + step, max(capacity, booked), booked, provider_id)  # a later window wins, as there
            continue
        for slot in _wall_time_slots(service.id, day, start, end_of_window, step, capacity, provider_id, schedule.booked):
            if slot.starts_at == at:
                found = slot
    return found


def local_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def last_bookable_day(service: Service | ServiceRow, now: datetime, zone: ZoneInfo) -> date:
    return local_today(now, zone) + timedelta(days=service.horizon_days)


def _bookable(service: Service | ServiceRow, slot: SlotView, now: datetime) -> bool:
    return slot.starts_at - now >= timedelta(minutes=service.lead_minutes)


@dataclass(frozen=True)
class DayAvailability:
    day: date
    slots: list[SlotView]
    free: int  # free places in slots that can still be booked
    closed: bool  # a closure day or an override that closes the service


def availability(session: Session, service: Service, now: datetime, zone: ZoneInfo, days: int | None = None) -> list[DayAvailability]:
    """The next days (today to the horizon) with their slots and free places."""
    today = local_today(now, zone)
    last = min(last_bookable_day(service, now, zone), today + timedelta(days=(days or service.horizon_days + 1) - 1))
    schedule = _load_schedule(session, service, today, last)
    result = []
    day = today
    while day <= last:
        slots = _day_slots(service, schedule, day, zone)
        free = sum(s.free for s in slots if _bookable(service, s, now))
        override = schedule.overrides.get(day)
        closed = day in schedule.closures or bool(override is not None and override.closed)
        result.append(DayAvailability(day, slots, free, closed))
        day += timedelta(days=1)
    return result


def availability_changes_at(service: Service, days: Sequence[DayAvailability], now: datetime, zone: ZoneInfo) -> datetime:
    """When ``availability(…)`` taken at ``now`` would first differ by the clock alone: the next
    slot whose lead time runs out (it stops being bookable), or the next local midnight."""
    midnight = datetime.combine(local_today(now, zone) + timedelta(days=1), time(0), zone).astimezone(UTC)
    lead = timedelta(minutes=service.lead_minutes)
    cutoffs = (s.starts_at - lead for d in days for s in d.slots if s.starts_at - lead >= now)
    # Never past midnight, even with no slot left today: the strip's 今天 / 明天 change then.
    return min(min(cutoffs, default=midnight), midnight)


def day_slots(session: Session, service: Service, day: date, zone: ZoneInfo, *, booked: bool = True) -> list[SlotView]:
    """One day's slots; without ``booked`` their places taken are not read (all 0)."""
    return _day_slots(service, _load_schedule(session, service, day, day, booked=booked), day, zone)


def next_free_slots(session: Session, service: Service, after: datetime, now: datetime, zone: ZoneInfo, limit: int = ALTERNATIVES) -> list[SlotView]:
    found: list[SlotView] = []
    for day in availability(session, service, now, zone):
        for slot in day.slots:
            if slot.starts_at > after - timedelta(seconds=1) and slot.free and _bookable(service, slot, now) and slot.starts_at != after:
                found.append(slot)
                if len(found) == limit:
                    return found
    return found


def parse_slot_key(raw: str | None, zone: ZoneInfo) -> datetime:
    text_ = (raw or "").strip()
    if not SLOT_KEY.match(text_):
        raise BookingError("bad_slot", _l("This time slot does not exist. Please choose again."), status=400)
    try:  # strptime's "%Y%m%d%H%M" on the 12 digits, without its cost (every booking parses one)
        local = datetime(int(text_[:4]), int(text_[4:6]), int(text_[6:8]), int(text_[8:10]), int(text_[10:12]), tzinfo=zone)
    except ValueError:
        raise BookingError("bad_slot", _l("This time slot does not exist. Please choose again."), status=400) from None
    return local.astimezone(UTC)


def find_slot(session: Session, service: Service | ServiceRow, slot_key: str | None, zone: ZoneInfo, *, booked: bool = True) -> SlotView:
    """The slot of *this* service at that time, or bad_slot (another service's slot, a time the
    schedule does not have, a closed day). Without ``booked`` its places taken are not read.
    (A keypad booking reads the day's schedule in its one read instead: _PLAN_READ_SQL.)"""
    at = parse_slot_key(slot_key, zone)
    day = at.astimezone(zone).date()
    return _slot_or_refuse(_slot_at(service, _load_schedule(session, service, day, day, booked=booked), day, zone, at))


def _slot_or_refuse(slot: SlotView | None) -> SlotView:
    if slot is not None:
        return slot
    raise BookingError("not_a_slot", _l("This service has no slot at that time. Please choose again."), status=404)


# ---- services and schedules (staff) ----


def get_service(session: Session, service_id: Any, *, active_only: bool = False) -> Service:
    try:
        service = session.get(Service, int(service_id))
    except (TypeError, ValueError, OverflowError):
        service = None
    if service is None or (active_only and not service.active):
        raise BookingError("unknown_service", _l("This service does not exist."), status=404)
    return service


@dataclass(frozen=True)
class ServiceRow:
    """The columns of a service a booking reads (a Core row, not an ORM object): book() reads
    it on every keypad confirmation, where loading the ORM object was a tenth of the request."""

    id: int
    name: str
    prefix: str
    category: ServiceCategory
    place: str
    duration_minutes: int
    lead_minutes: int
    horizon_days: int
    per_person_limit: int
    cancel_minutes: int
    noshow_limit: int
    noshow_days: int
    block_days: int
    active: bool
    demo_key: str | None


_SERVICE_COLUMNS = tuple(f.name for f in fields(ServiceRow))


def _service_id(raw: Any) -> int | None:
    """A service id as the form sent it, or None when it cannot be one."""
    try:
        number = int(raw)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 < number < 2**63 else None


def _service_of(values: Sequence[Any]) -> ServiceRow | None:
    """The ServiceRow of a row of _SERVICE_COLUMNS (None: no such service)."""
    if values[0] is None:
        return None
    found = list(values)
    found[3], found[13] = ServiceCategory(found[3]), bool(found[13])  # category, active
    return ServiceRow(*found)


def list_services(session: Session, *, active_only: bool = False) -> list[Service]:
    query = select(Service).order_by(Service.id)
    if active_only:
        query = query.where(Service.active.is_(True))
    return list(session.scalars(query))


def _text(raw: str | None, limit: int, field: str, *, required: bool = False) -> str:
    return clean_text(raw, limit, field, error=BookingError, required=required)


def _int(raw: Any, field: str, low: int, high: int, *, optional: bool = False) -> int | None:
    return parse_whole_number(raw, field, error=BookingError, low=low, high=high, signed=False, optional=optional)


def _time(raw: str | None, field: str) -> time:
    try:
        return time.fromisoformat((raw or "").strip()[:5])
    except ValueError:
        raise BookingError("bad_time", _l("Please enter a time such as 09:00."), field=field) from None


def _date(raw: str | None, field: str, *, optional: bool = False) -> date | None:
    text_ = (raw or "").strip()
    if optional and not text_:
        return None
    try:
        return date.fromisoformat(text_)
    except ValueError:
        raise BookingError("bad_date", _l("Please enter a date."), field=field) from None


def save_service(
    session: Session,
    service: Service | None,
    *,
    name: str | None,
    prefix: str | None,
    category: str | None,
    description: str | None = "",
    place: str | None = "",
    icon: str | None = "",
    duration_minutes: Any = 20,
    lead_minutes: Any = 30,
    horizon_days: Any = 14,
    per_person_limit: Any = 1,
    cancel_minutes: Any = 60,
    noshow_limit: Any = 3,
    noshow_days: Any = 90,
    block_days: Any = 30,
    points_on_serve: Any = 0,
    active: bool = True,
    actor: StaffUser | None,
    remote_addr: str = "",
    demo_key: str | None = None,
) -> Service:
    letter = unicodedata.normalize("NFKC", prefix or "").strip().upper()
    if not (len(letter) == 1 and "A" <= letter <= "Z"):
        raise BookingError("bad_prefix", _l("Please give one letter (A–Z) for the ticket numbers."), field="prefix")
    try:
        kind = ServiceCategory(category or "")
    except ValueError:
        raise BookingError("bad_category", _l("Please choose a category."), field="category") from None
    fields = {
        "name": _text(name, 30, "name", required=True),
        "prefix": letter,
        "category": kind,
        "description": _text(description, 500, "description"),
        "place": _text(place, 60, "place"),
        "icon": _text(icon, 8, "icon"),
        "duration_minutes": _int(duration_minutes, "duration_minutes", 5, 480),
        "lead_minutes": _int(lead_minutes, "lead_minutes", 0, 7 * 24 * 60),
        "horizon_days": _int(horizon_days, "horizon_days", 1, 90),
        "per_person_limit": _int(per_person_limit, "per_person_limit", 1, 10),
        "cancel_minutes": _int(cancel_minutes, "cancel_minutes", 0, 7 * 24 * 60),
        "noshow_limit": _int(noshow_limit, "noshow_limit", 1, 20),
        "noshow_days": _int(noshow_days, "noshow_days", 1, 365),
        "block_days": _int(block_days, "block_days", 0, 365),
        "points_on_serve": _int(points_on_serve or 0, "points_on_serve", 0, 1000),
        "active": bool(active),
    }
    with write_transaction(session):
        taken = session.scalar(select(Service.id).where(Service.prefix == letter, Service.id != (service.id if service else 0)))
        if taken is not None:
            raise BookingError("prefix_taken", _l("Another service already uses this letter."), field="prefix")
        created = service is None
        if service is None:
            service = Service(demo_key=demo_key)
            session.add(service)
        else:
            service = session.merge(service)
        for name_, value in fields.items():
            setattr(service, name_, value)
        session.flush()
        record_audit(session, actor, "service.create" if created else "service.update", target=f"service:{service.id}", remote_addr=remote_addr)
    return service


def save_provider(session: Session, service: Service, *, name: str | None, kind: str | None, actor: StaffUser | None, remote_addr: str = "") -> Provider:
    try:
        provider_kind = ProviderKind(kind or "volunteer")
    except ValueError:
        raise BookingError("bad_kind", _l("Please choose a category."), field="kind") from None
    clean = _text(name, 40, "name", required=True)
    with write_transaction(session):
        provider = Provider(service_id=service.id, name=clean, kind=provider_kind)
        session.add(provider)
        session.flush()
        record_audit(session, actor, "service.provider", target=f"service:{service.id}", detail=clean, remote_addr=remote_addr)
    return provider


def _provider_id(session: Session, service: Service, raw: Any) -> int | None:
    if raw in (None, "", "0"):
        return None
    provider = session.get(Provider, int(raw)) if str(raw).isascii() and str(raw).isdigit() else None
    if provider is None or provider.service_id != service.id:
        raise BookingError("bad_provider", _l("Please choose who gives the service."), field="provider_id")
    return provider.id


def active_providers(service: Service) -> list[Provider]:
    return [p for p in service.providers if p.active]


def sole_provider_id(service: Service) -> int | None:
    """The provider of a service given by exactly one (active) provider, else None."""
    providers = active_providers(service)
    return providers[0].id if len(providers) == 1 else None


def save_template(
    session: Session,
    service: Service,
    *,
    weekday: Any,
    starts: str | None,
    ends: str | None,
    slot_minutes: Any,
    capacity: Any,
    provider_id: Any = None,
    valid_from: str | None = "",
    valid_until: str | None = "",
    actor: StaffUser | None,
    remote_addr: str = "",
) -> ScheduleTemplate:
    """A weekly template. Existing bookings stay where they are: a slot that was booked keeps
    its row, its time and its people whatever the templates say afterwards."""
    start, end = _time(starts, "starts"), _time(ends, "ends")
    fields: dict[str, Any] = {
        "weekday": _int(weekday, "weekday", 0, 6),
        "starts": start,
        "ends": end,
        "slot_minutes": _int(slot_minutes, "slot_minutes", 5, 480),
        "capacity": _int(capacity, "capacity", 1, 100),
        "valid_from": _date(valid_from, "valid_from", optional=True),
        "valid_until": _date(valid_until, "valid_until", optional=True),
    }
    if end <= start:
        raise BookingError("ends_before_start", _l("The end must be after the start."), field="ends")
    with write_transaction(session):
        fields["provider_id"] = _provider_id(session, service, provider_id)
        template = ScheduleTemplate(service_id=service.id, **fields)
        session.add(template)
        session.flush()
        record_audit(session, actor, "service.template", target=f"service:{service.id}", detail=f"template={template.id}", remote_addr=remote_addr)
    return template


def delete_template(session: Session, template_id: Any, *, actor: StaffUser | None, remote_addr: str = "") -> None:
    with write_transaction(session):
        template = session.get(ScheduleTemplate, int(template_id)) if str(template_id).isdigit() else None
        if template is None:
            raise BookingError("unknown_template", _l("This schedule does not exist."), status=404)
        record_audit(
            session, actor, "service.template_delete", target=f"service:{template.service_id}", detail=f"template={template.id}", remote_addr=remote_addr
        )
        session.delete(template)


def save_override(
    session: Session,
    service: Service,
    *,
    day: str | None,
    closed: bool,
    starts: str | None = "",
    ends: str | None = "",
    slot_minutes: Any = "",
    capacity: Any = "",
    note: str | None = "",
    actor: StaffUser | None,
    remote_addr: str = "",
) -> ScheduleOverride:
    the_day = _date(day, "day")
    fields: dict[str, Any] = {"closed": bool(closed), "note": _text(note, 60, "note"), "starts": None, "ends": None, "slot_minutes": None, "capacity": None}
    if not closed:
        fields["starts"], fields["ends"] = _time(starts, "starts"), _time(ends, "ends")
        if fields["ends"] <= fields["starts"]:
            raise BookingError("ends_before_start", _l("The end must be after the start."), field="ends")
        fields["slot_minutes"] = _int(slot_minutes, "slot_minutes", 5, 480, optional=True)
        fields["capacity"] = _int(capacity, "capacity", 1, 100, optional=True)
    with write_transaction(session):
        override = session.scalar(select(ScheduleOverride).where(ScheduleOverride.service_id == service.id, ScheduleOverride.day == the_day))
        if override is None:
            override = ScheduleOverride(service_id=service.id, day=the_day)
            session.add(override)
        for name, value in fields.items():
            setattr(override, name, value)
        session.flush()
        record_audit(session, actor, "service.override", target=f"service:{service.id}", detail=f"{the_day} closed={closed}", remote_addr=remote_addr)
    return override


def delete_override(session: Session, override_id: Any, *, actor: StaffUser | None, remote_addr: str = "") -> None:
    with write_transaction(session):
        override = session.get(ScheduleOverride, int(override_id)) if str(override_id).isdigit() else None
        if override is None:
            raise BookingError("unknown_override", _l("This date does not exist."), status=404)
        record_audit(session, actor, "service.override_delete", target=f"service:{override.service_id}", detail=str(override.day), remote_addr=remote_addr)
        session.delete(override)


def save_closure(session: Session, *, day: str | None, reason: str | None, actor: StaffUser | None, remote_addr: str = "") -> ClosureDay:
    the_day = _date(day, "day")
    clean = _text(reason, 40, "reason")
    with write_transaction(session):
        closure = session.scalar(select(ClosureDay).where(ClosureDay.day == the_day))
        if closure is None:
            closure = ClosureDay(day=the_day)
            session.add(closure)
        closure.reason = clean
        session.flush()
        record_audit(session, actor, "closure.save", target=f"closure:{the_day}", detail=clean, remote_addr=remote_addr)
    return closure


def delete_closure(session: Session, closure_id: Any, *, actor: StaffUser | None, remote_addr: str = "") -> None:
    with write_transaction(session):
        closure = session.get(ClosureDay, int(closure_id)) if str(closure_id).isdigit() else None
        if closure is None:
            raise BookingError("unknown_closure", _l("This date does not exist."), status=404)
        record_audit(session, actor, "closure.delete", target=f"closure:{closure.day}", remote_addr=remote_addr)
        session.delete(closure)


def list_overrides(session: Session, service: Service, since: date) -> list[ScheduleOverride]:
    return list(
        session.scalars(select(ScheduleOverride).where(ScheduleOverride.service_id == service.id, ScheduleOverride.day >= since).order_by(ScheduleOverride.day))
    )


def list_closures(session: Session, since: date) -> list[ClosureDay]:
    return list(session.scalars(select(ClosureDay).where(ClosureDay.day >= since).order_by(ClosureDay.day)))


# ---- who is booking ----


@dataclass(frozen=True)
class PersonMember:
    """A member as a booking reads them (a Core row, not an ORM object)."""

    id: int
    name: str
    phone: str
    age_band: AgeBand
    active: bool


@dataclass(frozen=True)
class Person:
    key: str  # m:<member id> or p:<phone>
    member: PersonMember | None
    phone: str | None  # a guest's number; a member's number is on the member


_MEMBER_SQL = "SELECT id, name, phone, age_band, active FROM member WHERE "


def _member_row(raw: Any, where: str, value: Any) -> PersonMember | None:
    row = raw.execute(_MEMBER_SQL + where, (value,)).fetchone()
    return PersonMember(row[0], row[1], row[2], AgeBand(row[3]), bool(row[4])) if row is not None else None


def _member(session: Session, member_id: int) -> PersonMember | None:
    return _member_row(_raw(session.connection()), "id = ?", member_id) if 0 < member_id < 2**63 else None


def identify(session: Session, *, phone: str | None = None, member_id: int | None = None) -> Person:
    """A member (card, or a phone that belongs to a member) or a guest with a phone number.
    (A keypad booking finds the person in its one read instead: _PLAN_READ_SQL.)"""
    raw = _raw(session.connection())
    if member_id is not None:
        member = _member_row(raw, "id = ?", member_id) if 0 < member_id < 2**63 else None
        if member is None or not member.active:
            raise BookingError("member_revoked", _l("This membership is not active. Please ask the staff at the desk."), status=403)
        return Person(f"m:{member.id}", member, None)
    try:
        number = parse_phone(phone)
    except PhoneError as error:
        raise BookingError(error.code, error.message, field="phone") from None
    member = _member_row(raw, "phone = ?", number)
    if member is not None:
        if not member.active:
            raise BookingError("member_revoked", _l("This membership is not active. Please ask the staff at the desk."), status=403)
        return Person(f"m:{member.id}", member, None)
    return Person(f"p:{number}", None, number)


def _person_phone(person: Person) -> str | None:
    return person.member.phone if person.member is not None else person.phone


def blocked_until(
    session: Session | None, person_key: str, service: Service | ServiceRow, now: datetime, *, noshows: tuple[int, Any] | None = None
) -> datetime | None:
    """When the no-show block ends, or None: noshow_limit no-shows within noshow_days (not
    counting those before a staff member lifted the block) block for block_days after the last.
    ``noshows``: _NOSHOWS's answer (count, last) when the caller has read it already."""
    if service.block_days == 0:
        return None
    if noshows is None:
        assert session is not None, "blocked_until reads the no-shows itself only with a session"
        noshows = tuple(session.execute(_NOSHOWS, {"person_key": person_key, "since": now - timedelta(days=service.noshow_days)}).one())
    count, last = noshows
    if count < service.noshow_limit or last is None:
        return None
    until = UTCDateTime().process_result_value(last, None) + timedelta(days=service.block_days)
    return until if until > now else None


# The no-shows that count towards a block (built once: every kiosk booking asks).
_booking_table = cast(Table, Booking.__table__)
_lift_table = cast(Table, BlockLift.__table__)
_lifted = select(func.max(_lift_table.c.lifted_at)).where(_lift_table.c.person_key == bindparam("person_key")).scalar_subquery()
_NOSHOWS = select(func.count(), func.max(_booking_table.c.closed_at)).where(
    _booking_table.c.person_key == bindparam("person_key"),
    _booking_table.c.status == BookingStatus.NO_SHOW,
    _booking_table.c.closed_at > bindparam("since", type_=UTCDateTime()),
    or_(_lifted.is_(None), _booking_table.c.closed_at > _lifted),
)


def lift_block(session: Session, *, phone: str | None, reason: str | None, staff: StaffUser, now: datetime | None = None, remote_addr: str = "") -> BlockLift:
    """Staff lift a person's no-show block; logged with the reason."""
    clean = " ".join((reason or "").split())[:200]
    if not clean:
        raise BookingError("reason_required", _l("Please give the reason."), field="reason")
    with write_transaction(session):
        person = identify(session, phone=phone)
        lift = BlockLift(person_key=person.key, lifted_at=now or utcnow(), staff_id=staff.id, reason=clean)
        session.add(lift)
        session.flush()
        record_audit(session, staff, "booking.block_lift", target=f"person:{lift.id}", detail=clean, remote_addr=remote_addr)
    return lift


# ---- tickets ----


def ticket_text(service: Service, seq: int) -> str:
    return _ticket_text(service.prefix, seq)


def _ticket_text(prefix: str, seq: int) -> str:
    return f"{prefix}{seq:03d}"


def _next_ticket(session: Session, service_id: int, day: date) -> int:
    """The next number of the service's day, inside the caller's write (gap-free: a rolled-back
    booking rolls its number back)."""
    return int(session.execute(_NEXT_TICKET, {"service_id": service_id, "day": day}).scalar_one())


def ticket_token(booking_id: int, signer: TokenSigner, centre_code: str) -> str:
    return signer.sign(f"{TICKET_PREFIX}.{centre_code}.{booking_id}")


class TicketTokens:
    """ticket_token() for one signing key and centre, faster: the constant head of every
    ticket's payload ("B1.<centre>.") is fed to the MAC once, and each ticket copies that MAC
    and adds its booking id (a new HMAC was ~4 µs of every booking). Same payload, same
    signature (kiosk.signing.TokenSigner: HMAC-SHA256 over purpose, NUL, payload, cut to
    SIGNATURE_BYTES, base64url without padding), read by read_ticket_token() as before."""

    def __init__(self, signing_key: str, centre_code: str):
        self.head = f"{TICKET_PREFIX}.{centre_code}."
        self._mac = hmac.new(signing_key.encode(), TICKET_PURPOSE.encode() + b"\x00" + self.head.encode(), hashlib.sha256)

    def tail(self, booking_id: int) -> str:
        """The token after ``head``: the booking id and the signature."""
        number = str(int(booking_id))
        mac = self._mac.copy()
        mac.update(number.encode())
        return f"{number}.{base64.urlsafe_b64encode(mac.digest()[:SIGNATURE_BYTES]).decode().rstrip('=')}"


def looks_like_ticket(code: str) -> bool:
    return code.startswith(TICKET_PREFIX + ".")


def read_ticket_token(token: str, signer: TokenSigner, centre_code: str) -> int:
    parts = (token or "").split(".")
    if len(parts) != 4 or parts[0] != TICKET_PREFIX or not parts[2].isdigit() or len(parts[2]) > 12:
        raise BookingError("ticket_invalid", _l("This is not a booking ticket of ours."), status=400)
    if parts[1] != centre_code:
        raise BookingError("wrong_centre", _l("This booking ticket belongs to another centre."), status=403)
    if signer.verify(token) is None:
        raise BookingError("ticket_tampered", _l("This booking ticket is not genuine."), status=403)
    return int(parts[2])


@dataclass(frozen=True)
class TicketView:
    """What a ticket screen, a printout and the queue show (read inside the transaction)."""

    booking_id: int
    service_id: int
    service_name: str
    service_place: str
    ticket: str  # A012
    day: date
    starts_at: datetime | None  # None: a walk-in
    status: BookingStatus
    channel: BookingChannel
    # Counted for a ticket of the day it is booked on; None from book() for another day's: only
    # today's ticket says it (ticket page, printout), and a count taken days ahead would be stale
    # by then (the ticket page counts again when opened). ticket_view() counts unless told the day
    # is not the ticket's.
    people_ahead: int | None
    masked_who: str  # 138****5678 or 张*华: the ticket never shows more
    cancellable_until: datetime | None
    desk: str = ""
    promoted: tuple[str, ...] = field(default_factory=tuple)  # waitlist places this person got

    @property
    def label(self) -> str:
        return f"{self.service_name} {self.ticket}"


def people_ahead(session: Session, booking: Booking) -> int:
    if not booking.is_open:
        return 0
    return _count_ahead(session, booking.service_id, booking.day, booking.queue_at, booking.ticket_seq)  # autoflushes


def _count_ahead(connection: Connection | Session, service_id: int, day: date, queue_at: datetime, seq: int) -> int:
    """Open tickets of the service's day before this one in the queue."""
    return int(connection.execute(_AHEAD, {"b_service": service_id, "b_day": day, "b_queue_at": queue_at, "b_seq": seq}).scalar() or 0)


def _mask(booking: Booking) -> str:
    from kiosk.privacy import mask_name, mask_phone

    if booking.member is not None:
        return mask_name(booking.member.name)
    return mask_phone(booking.phone) if booking.phone else ""


def ticket_view(session: Session, booking: Booking, *, promoted: Sequence[str] = (), today: date | None = None) -> TicketView:
    """The ticket as shown. With ``today`` given (the ticket page), the people ahead are counted
    only when the ticket is for that day, the only one whose page shows them: the count reads
    every open ticket of the day, and every keypad booking is followed by its ticket page."""
    service = booking.service
    starts_at = booking.slot.starts_at if booking.slot is not None else None
    until = starts_at - timedelta(minutes=service.cancel_minutes) if starts_at is not None else None
    return TicketView(
        booking.id,
        service.id,
        service.name,
        service.place,
        booking.ticket,
        booking.day,
        starts_at,
        booking.status,
        booking.channel,
        people_ahead(session, booking) if today is None or booking.day == today else None,
        _mask(booking),
        until,
        booking.desk,
        tuple(promoted),
    )


def get_booking(session: Session, booking_id: Any) -> Booking:
    try:
        booking = session.get(Booking, int(booking_id))
    except (TypeError, ValueError, OverflowError):
        booking = None
    if booking is None:
        raise BookingError("unknown_ticket", _l("We could not find this ticket."), status=404)
    return booking


def _event_payload(
    session: Session, booking: Booking, service: Service, person_phone: str | None, member: Member | PersonMember | None, rules: BookingRules
) -> dict:
    """What the district learns: no name; the phone sealed to the hub (which keeps only its own
    pseudonym of it) and an age band."""
    return {
        "booking_id": booking.id,
        "service_id": service.id,
        "service_key": service.demo_key,
        "category": service.category.value,
        "day": booking.day.isoformat(),
        "starts_at": booking.slot.starts_at.isoformat() if booking.slot is not None else None,
        "channel": booking.channel.value,
        **person_field(session, person_phone),
        "member": member is not None,
        "age_band": member.age_band.value if member is not None else None,
        "device": rules.device_id,
    }


def _take_promotions(session: Session, person_key: str, now: datetime) -> list[str]:
    """Waitlist places this person got since they were last here; shown once, then marked seen."""
    entries = list(
        session.scalars(
            select(WaitlistEntry).where(
                WaitlistEntry.person_key == person_key, WaitlistEntry.status == WaitlistStatus.PROMOTED, WaitlistEntry.notified_at.is_(None)
            )
        )
    )
    labels = []
    for entry in entries:
        entry.notified_at = now
        if entry.booking is not None and entry.booking.is_open:
            labels.append(f"{entry.service.name} {entry.booking.ticket}")
    return labels


def take_waitlist_news(session: Session, *, phone: str | None = None, member_id: int | None = None, now: datetime | None = None) -> list[str]:
    """The waitlist places this person got, for a screen other than a new ticket's (我的积分
    after a card scan, a refusal, the waiting list, a look-up): shown once, so marked seen.
    One read when there is none (the usual case); nothing is written then. A phone that is
    not a valid number has no news (the screen says what is wrong with it)."""
    try:
        person = identify(session, phone=phone, member_id=member_id)
    except BookingError:
        return []
    waiting = session.scalar(
        select(WaitlistEntry.id)
        .where(WaitlistEntry.person_key == person.key, WaitlistEntry.status == WaitlistStatus.PROMOTED, WaitlistEntry.notified_at.is_(None))
        .limit(1)
    )
    if waiting is None:
        return []
    with write_transaction(session):
        # Taken again under the write lock: of two screens at once, only one shows it.
        return _take_promotions(session, person.key, now or utcnow())


# ---- booking ----


def _check_request_key(request_key: str | None) -> str:
    key = (request_key or "").strip()
    if not 8 <= len(key) <= 64 or not key.isascii() or not key.replace("-", "").isalnum():
        raise BookingError("bad_request_key", _l("Please go back and try again."), status=400)
    return key


def new_request_key() -> str:
    return uuid.uuid4().hex


def _open_count(session: Session, service_id: int, person_key: str, today: date) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(Booking.service_id == service_id, Booking.person_key == person_key, Booking.status.in_(OPEN_STATUSES), Booking.day >= today)
        )
        or 0
    )


def _check_rules(session: Session, service: Service, slot: SlotView, person: Person, now: datetime, zone: ZoneInfo, channel: BookingChannel) -> None:
    _check_time_rules(session, service, slot, person, now, zone, channel)
    _check_person_limits(session, service, slot, person, now, zone)


class _NaturalDay:
    """A day in a lazy message, in the words of the language the message is shown in
    (12月22日, 22 Dec): the message is translated when rendered, and so is the day."""

    def __init__(self, day: date):
        self.day = day

    def __str__(self) -> str:
        return month_day_text(self.day, str(get_locale() or "zh"))


def _check_time_rules(
    session: Session | None,
    service: Service | ServiceRow,
    slot: SlotView,
    person: Person,
    now: datetime,
    zone: ZoneInfo,
    channel: BookingChannel,
    *,
    noshows: tuple[int, Any] | None = None,
) -> None:
    """Past, lead time, horizon and the no-show block (``noshows``: see blocked_until; without
    them the session reads them)."""
    if slot.starts_at <= now:
        raise BookingError("slot_past", _l("This time has already passed. Please choose a later time."), status=409)
    if not _bookable(service, slot, now):
        raise BookingError("too_soon", _l("Please book at least %(n)d minutes ahead.", n=service.lead_minutes), status=409)
    if slot.day > last_bookable_day(service, now, zone):
        raise BookingError("too_far", _l("Bookings open %(n)d days ahead. Please choose an earlier day.", n=service.horizon_days), status=409)
    if channel == BookingChannel.KIOSK:
        until = blocked_until(session, person.key, service, now, noshows=noshows)
        if until is not None:
            raise BookingError(
                "blocked",
                _l(
                    "Booking at the kiosk is paused until %(day)s after missed appointments. Please ask the staff at the desk.",
                    day=_NaturalDay(until.astimezone(zone).date()),
                ),
                status=403,
            )


def _check_person_limits(session: Session, service: Service, slot: SlotView, person: Person, now: datetime, zone: ZoneInfo) -> None:
    """One query for both rules: this person's open bookings of the service, and whether one
    of them is at this very time."""
    _refuse_over_limit(
        session.execute(_PERSON_OPEN, _person_open_params(service.id, person.key, local_today(now, zone), slot)).one(), service.per_person_limit, service.name
    )


def _person_open_params(service_id: int, person_key: str, today: date, slot: SlotView) -> dict[str, Any]:
    return {"b_service": service_id, "b_person": person_key, "b_today": today, "b_starts": slot.starts_at}


def _refuse_over_limit(found: Any, limit: int, service_name: str) -> None:
    """The refusal of _PERSON_OPEN's answer (open bookings, of which at this very time)."""
    open_count, same_slot = found
    if same_slot:
        raise BookingError("already_booked", _l("You have already booked this time."), status=409)
    if open_count >= limit:
        raise BookingError(
            "limit_reached",
            _l("You already have %(n)d open booking(s) for %(service)s. Cancel one first or ask the desk.", n=limit, service=service_name),
            status=409,
        )


def _take_place(session: Session, slot_id: int) -> bool:
    taken = session.execute(update(Slot).where(Slot.id == slot_id, Slot.booked < Slot.capacity).values(booked=Slot.booked + 1))
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]  # a CursorResult


def _add_booking(
    session: Session,
    service: Service,
    *,
    slot_id: int | None,
    day: date,
    queue_at: datetime,
    person: Person,
    channel: BookingChannel,
    request_key: str | None,
    rules: BookingRules,
    now: datetime,
    staff: StaffUser | None = None,
    person_key: str | None = None,
) -> Booking:
    seq = _next_ticket(session, service.id, day)
    booking = Booking(
        service_id=service.id,
        slot_id=slot_id,
        day=day,
        ticket_seq=seq,
        ticket=ticket_text(service, seq),
        queue_at=queue_at,
        channel=channel,
        member_id=person.member.id if person.member is not None else None,
        phone=person.phone,
        person_key=person_key or person.key,
        request_key=request_key,
        device_id=rules.device_id,
        staff_id=staff.id if staff is not None else None,
        created_at=now,
    )
    session.add(booking)
    session.flush()
    record_event(session, "booking.created", _event_payload(session, booking, service, _person_phone(person), person.member, rules), occurred_at=now)
    return booking


def book(
    session: Session,
    service_id: Any,
    slot_key: str | None,
    *,
    rules: BookingRules,
    request_key: str | None,
    phone: str | None = None,
    member_id: int | None = None,
    channel: BookingChannel = BookingChannel.KIOSK,
    staff: StaffUser | None = None,
    now: datetime | None = None,
    remote_addr: str = "",
) -> TicketView:
    """Book one place in a slot. The same request_key (a double tap, a retry) returns the
    first ticket; a full slot raises SlotFullError with the next free slots.

    The hot path of the keypad, built as check-in's (kiosk.checkin.services.check_in): the
    phone is parsed and sealed to the hub before the write lock; everything else is one unit of
    work through kiosk.db.grouped_write (_book_grouped), its reads included, in SQLite's own
    words on the unit's connection and in one statement since issue 11 part 8 (_read_plan: the
    person, the service, this request key's booking, the no-show count and waitlist news, the
    slot's day of the schedule, the person's open bookings, the hub key, the people ahead;
    checked by _plan_in_unit), then what races decide (_book_unit): the place (``booked <
    capacity`` in the database), the ticket number, the booking and its event. Bookings
    that arrive while another one's commit is on its way to the disk share the next commit,
    each in its own savepoint. The reads were before the lock until issue 11 part 6: eight
    waitress threads at their own reads kept taking the GIL from the group's leader at each of
    its statements (docs/benchmarks.md "Booking, part 6"). A booking by staff (audit entry) or
    by a person with waitlist news to show (marked seen) has a write_transaction of its own
    (_book_apart, with the reads before it)."""
    now = now or utcnow()
    key = _check_request_key(request_key)
    number = None
    if member_id is None:
        try:
            number = parse_phone(phone)
        except PhoneError as error:
            raise BookingError(error.code, error.message, field="phone") from None
    request = _Request(service_id, slot_key, key, number, member_id, channel, rules, now)
    if staff is None:
        done = _book_grouped(session, request, number)
        if done is not None:
            return done
    return _book_apart(session, request, staff=staff, remote_addr=remote_addr)


@dataclass(frozen=True)
class _Request:
    """What a booking request asks for, checked as far as it can be without reading."""

    service_id: Any
    slot_key: str | None
    key: str  # the request key
    number: str | None  # the phone as parse_phone gave it (None: a member by card)
    member_id: int | None
    channel: BookingChannel
    rules: BookingRules
    now: datetime


@dataclass(frozen=True)
class _Early:
    """A unit of work's answer that wrote nothing: this request key's booking (a double tap, a
    retry), or the person has waitlist news to be marked seen (book() then takes _book_apart)."""

    key_booking: int | None = None
    key_person: str | None = None
    person_key: str | None = None
    promotions: bool = False


@dataclass(slots=True)
class _PlanRead:
    """What _PLAN_READ_SQL found for a booking request (see _read_plan)."""

    person: Person
    service: ServiceRow | None
    noshows: tuple[int, datetime | None]  # that count towards a block, and the last one's close
    key_booking: int | None  # this request key's booking (a double tap, a retry)
    key_person: str | None
    news: bool  # a waitlist place waits to be shown to the person
    schedule: _Schedule | None  # the slot's day (None: not a slot key)
    at: datetime | None  # the slot key's start (UTC)
    locked: tuple[int, int, str | None, int | None]  # _LOCKED_READ_SQL's: open bookings, at this time, the hub key, people ahead (today's ticket)


def _read_plan(raw: Any, request: _Request) -> _PlanRead:
    """A booking request's reads in one statement (_PLAN_READ_SQL): the person, the service,
    the no-shows, this request key's booking, waitlist news, the slot's day of the schedule and
    what _book_unit reads under the lock. Raises member_revoked (as identify)."""
    rules, now = request.rules, request.now
    try:
        at: datetime | None = parse_slot_key(request.slot_key, rules.zone)
    except BookingError:
        at = None  # refused after the checks before it (_plan_in_unit)
    day = at.astimezone(rules.zone).date() if at is not None else None
    moment = _sql_moment(now)
    member_id = request.member_id
    params = {
        "service": _service_id(request.service_id),
        "key": request.key,
        "now": moment[:19],
        "now_fraction": moment[19:],
        "no_show": BookingStatus.NO_SHOW.value,
        "promoted": WaitlistStatus.PROMOTED.value,
        "weekday": day.weekday() if day is not None else None,
        "day": _sql_day(day) if day is not None else None,
        "today": _sql_day(local_today(now, rules.zone)),
        "starts": _sql_moment(at) if at is not None else None,
    } | _OPEN_PARAMS
    # People ahead only for a ticket of today (TicketView.people_ahead).
    today = day is not None and params["day"] == params["today"]
    if member_id is not None:
        params |= {"member": member_id if 0 < member_id < 2**63 else None, "guest": None}
        row = raw.execute(_PLAN_READ_BY_MEMBER_SQL if today else _PLAN_READ_BY_MEMBER_OTHER_DAY_SQL, params).fetchone()
    else:
        params |= {"phone": request.number, "guest": f"p:{request.number}"}
        row = raw.execute(_PLAN_READ_BY_PHONE_SQL if today else _PLAN_READ_BY_PHONE_OTHER_DAY_SQL, params).fetchone()
    found_id, name, phone, age_band, active = row[:5]
    noshow_count, last_noshow, key_booking, key_person, news, schedule, open_count, same_slot, hub_key, ahead = row[5 + len(_SERVICE_COLUMNS) :]
    if found_id is None and member_id is None:
        person = Person(f"p:{request.number}", None, request.number)
    elif found_id is None or not active:
        raise BookingError("member_revoked", _l("This membership is not active. Please ask the staff at the desk."), status=403)
    else:
        person = Person(f"m:{found_id}", PersonMember(found_id, name, phone, AgeBand(age_band), True), None)
    return _PlanRead(
        person,
        _service_of(row[5 : 5 + len(_SERVICE_COLUMNS)]),
        (noshow_count, _moment(last_noshow)),
        key_booking,
        key_person,
        bool(news),
        _day_schedule(json.loads(schedule), day) if day is not None else None,
        at,
        (open_count, same_slot, hub_key, ahead),
    )


def _plan_in_unit(
    raw: Any,
    request: _Request,
    *,
    database: str,
    presealed: tuple[str | None, dict[str, str]] | None,
    staff: StaffUser | None = None,
    stop_for_news: bool = True,
    under_lock: bool = True,
) -> _BookingPlan | _Early:
    """book()'s reads and checks on the unit of work's own connection, under the writer lock
    (as check-in's), in one statement (_read_plan): the person, the service, this request key's
    booking, the no-show count and any waitlist news, the slot's day of the schedule, and
    _book_unit's own read (kept in the plan when ``under_lock``); the time rules. Raises the
    refusals in the order the separate reads did. _book_apart runs the same before its lock
    (``stop_for_news`` and ``under_lock`` False: the plan says there is news, and _book_unit
    reads again under the lock)."""
    key, rules, now, channel = request.key, request.rules, request.now, request.channel
    read = _read_plan(raw, request)
    person, service = read.person, read.service
    if read.key_booking is not None:
        return _Early(key_booking=int(read.key_booking), key_person=read.key_person, person_key=person.key)
    if service is None or not service.active:
        raise BookingError("unknown_service", _l("This service does not exist."), status=404)
    if read.at is None or read.schedule is None:
        parse_slot_key(request.slot_key, rules.zone)  # raises bad_slot
        raise AssertionError("a slot key _read_plan could not parse")
    slot = _slot_or_refuse(_slot_at(service, read.schedule, read.at.astimezone(rules.zone).date(), rules.zone, read.at))
    _check_time_rules(None, service, slot, person, now, rules.zone, channel, noshows=read.noshows)
    if read.news and stop_for_news:
        return _Early(promotions=True)
    return _BookingPlan.of(
        None,
        service,
        slot,
        person,
        channel,
        key,
        rules,
        now,
        staff,
        database=database,
        presealed=presealed,
        news=read.news,
        locked=read.locked if under_lock else None,
    )


def _first_ticket(session: Session, early: _Early) -> TicketView:
    """A double tap or a retried request: the ticket its request key already has (refused if
    the key was another person's)."""
    if early.key_person != early.person_key:
        raise BookingError("bad_request_key", _l("Please go back and try again."), status=409)
    return ticket_view(session, get_booking(session, cast(int, early.key_booking)))


def _book_grouped(session: Session, request: _Request, number: str | None) -> TicketView | None:
    """A keypad booking as one unit of work through grouped_write, its reads included (see
    book()); None when the person has waitlist news (book() then takes _book_apart)."""
    now, rules = request.now, request.rules
    database = str(session.get_bind().engine.url)
    # The phone sealed to the hub here, before the lock, with the hub key last seen (a member
    # found by the typed number has that very number); a member by card is sealed in the unit.
    hub_key = last_hub_keys.get(database)
    presealed = (hub_key, person_field_for_key(hub_key, number)) if hub_key is not None and number else (None, {})

    def unit(connection: Connection) -> TicketView | int | _Early:
        plan = _plan_in_unit(_raw(connection), request, database=database, presealed=presealed)
        if isinstance(plan, _Early):
            return plan
        try:
            return _book_unit(connection, plan)
        except _SlotTaken as taken:
            taken.plan = plan
            raise

    try:
        done = grouped_write(session, unit)
    except _SlotTaken as taken:
        session.rollback()
        plan = cast(_BookingPlan, taken.plan)
        alternatives = next_free_slots(session, get_service(session, plan.service_id), plan.slot.starts_at, now, rules.zone)
        raise SlotFullError(alternatives, plan.service_id, plan.slot.key(rules.zone)) from None
    if isinstance(done, _Early):
        if done.promotions:
            return None
        session.rollback()  # a read transaction that sees the booking (grouped_write may have left this one open)
        return _first_ticket(session, done)
    if isinstance(done, int):  # the same request key got there first (inside the lock)
        session.rollback()
        return ticket_view(session, get_booking(session, done))
    return done


def _book_apart(session: Session, request: _Request, *, staff: StaffUser | None, remote_addr: str) -> TicketView:
    """book() with the reads before the lock: by staff (audit entry) or for a person with
    waitlist news to show (marked seen), in a write_transaction of its own."""
    now, rules = request.now, request.rules
    # The reads before the lock, in SQLite's own words on a pooled connection outside any
    # transaction (_reads): as in the unit of the keypad's bookings (_plan_in_unit).
    with _reads(session) as raw:
        plan = _plan_in_unit(raw, request, database=str(session.get_bind().engine.url), presealed=None, staff=staff, stop_for_news=False, under_lock=False)
    if isinstance(plan, _Early):
        return _first_ticket(session, plan)
    promotions, slot = plan.news, plan.slot

    def unit(connection: Connection) -> TicketView | int:
        return _book_unit(connection, plan)

    try:
        if staff is None and not promotions:
            done = grouped_write(session, unit)
            promoted: list[str] = []
        else:
            with write_transaction(session):
                done = unit(session.connection())
                if staff is not None and not isinstance(done, int):
                    record_audit(
                        session, staff, "booking.staff", target=f"booking:{done.booking_id}", detail=f"service={plan.service_id}", remote_addr=remote_addr
                    )
                promoted = _take_promotions(session, plan.person_key, now) if promotions else []
    except _SlotTaken:
        # The alternatives are read after the lock is released (the 49 losers of a race), in a
        # read transaction that sees the commit which took the place.
        session.rollback()
        alternatives = next_free_slots(session, get_service(session, plan.service_id), slot.starts_at, now, rules.zone)
        raise SlotFullError(alternatives, plan.service_id, slot.key(rules.zone)) from None
    if isinstance(done, int):  # the same request key got there first (inside the lock)
        session.rollback()  # a read transaction that sees it (grouped_write may have left this one open)
        return ticket_view(session, get_booking(session, done), promoted=promoted)
    return replace(done, promoted=tuple(promoted)) if promoted else done


@dataclass(frozen=True)
class _BookingPlan:
    """Everything _book_unit needs (plain values: the unit may run on another thread, on
    another request's connection): read in the unit itself (_plan_in_unit) or, for staff and
    waitlist news, before the lock (_book_apart)."""

    database: str
    service_id: int
    service_name: str
    service_place: str
    prefix: str
    per_person_limit: int
    cancel_minutes: int
    slot: SlotView
    today: date
    person_key: str
    member_id: int | None
    guest_phone: str | None
    person_phone: str  # the member's number or the guest's: sealed in the event
    masked_who: str
    channel: BookingChannel
    request_key: str
    device_id: str
    staff_id: int | None
    now: datetime
    hub_key: str | None  # the hub key the person was sealed with (None: not sealed yet)
    sealed: dict[str, str]
    event_base: dict[str, Any]  # the event's payload but for the booking id and the person
    news: bool = False  # the person has waitlist news to be shown and marked seen (_book_apart)
    locked: tuple[int, int, str | None, int | None] | None = None  # _LOCKED_READ_SQL's answer, read in this unit already (_read_plan)

    @classmethod
    def of(
        cls,
        session: Session | None,
        service: Service | ServiceRow,
        slot: SlotView,
        person: Person,
        channel: BookingChannel,
        key: str,
        rules: BookingRules,
        now: datetime,
        staff: StaffUser | None,
        *,
        database: str | None = None,
        presealed: tuple[str | None, dict[str, str]] | None = None,
        news: bool = False,
        locked: tuple[int, int, str | None, int | None] | None = None,
    ) -> _BookingPlan:
        from kiosk.privacy import mask_name, mask_phone

        member = person.member
        phone = _person_phone(person) or ""
        if database is None:
            database = str(session.get_bind().engine.url)  # type: ignore[union-attr]
        if presealed is not None and (presealed[1] or not phone):
            hub_key, sealed = presealed
        else:
            hub_key = last_hub_keys.get(database)
            sealed = person_field_for_key(hub_key, phone) if hub_key is not None else {}
        return cls(
            database=database,
            service_id=service.id,
            service_name=service.name,
            service_place=service.place,
            prefix=service.prefix,
            per_person_limit=service.per_person_limit,
            cancel_minutes=service.cancel_minutes,
            slot=slot,
            today=local_today(now, rules.zone),
            person_key=person.key,
            member_id=member.id if member is not None else None,
            guest_phone=person.phone,
            person_phone=phone,
            masked_who=mask_name(member.name) if member is not None else mask_phone(person.phone) if person.phone else "",
            channel=channel,
            request_key=key,
            device_id=rules.device_id,
            staff_id=staff.id if staff is not None else None,
            now=now,
            hub_key=hub_key,
            sealed=sealed,
            event_base={
                "service_id": service.id,
                "service_key": service.demo_key,
                "category": service.category.value,
                "day": slot.day.isoformat(),
                "starts_at": slot.starts_at.astimezone(UTC).isoformat(),
                "channel": channel.value,
                "member": member is not None,
                "age_band": member.age_band.value if member is not None else None,
                "device": rules.device_id,
            },
            news=news,
            locked=locked,
        )


def _book_unit(connection: Connection, plan: _BookingPlan) -> TicketView | int:
    """The serialised part of a booking (see book()): the ticket, or the id of the booking this
    request key already made. In SQLite's own words (see _raw): one read (this request key's
    booking, the person's open bookings and whether one is at this very time, the hub key, the
    people ahead), unless the plan was read in this unit with it (``plan.locked``), and four
    writes (the place, the ticket number, the booking, its event), the rows as SQLAlchemy's
    Core statements wrote them."""
    slot = plan.slot
    raw = _raw(connection)
    starts, day, now = _sql_moment(slot.starts_at), _sql_day(slot.day), _sql_moment(plan.now)
    if plan.locked is not None:  # read under this lock by _read_plan, which found no booking of this key
        open_count, same_slot, hub_key, ahead = plan.locked
    else:
        open_count, same_slot, key_booking, key_person, hub_key, ahead = raw.execute(
            _LOCKED_READ_SQL if slot.day == plan.today else _LOCKED_READ_OTHER_DAY_SQL,
            {"key": plan.request_key, "service": plan.service_id, "person": plan.person_key, "today": _sql_day(plan.today), "starts": starts, "day": day}
            | _OPEN_PARAMS,
        ).fetchone()
        if key_booking is not None:
            if key_person != plan.person_key:
                raise BookingError("bad_request_key", _l("Please go back and try again."), status=409)
            return int(key_booking)
    _refuse_over_limit((open_count, same_slot), plan.per_person_limit, plan.service_name)
    taken = raw.execute(_TAKE_PLACE_SQL, (plan.service_id, day, starts, _sql_moment(slot.ends_at), slot.capacity, slot.provider_id)).fetchone()
    if taken is None:
        raise _SlotTaken
    seq = int(raw.execute(_NEXT_TICKET_SQL, (plan.service_id, day)).fetchone()[0])
    ticket = _ticket_text(plan.prefix, seq)
    try:
        booking_id = raw.execute(
            _INSERT_BOOKING_SQL,
            (
                plan.service_id,
                taken[0],
                day,
                seq,
                ticket,
                starts,
                BookingStatus.BOOKED.value,
                plan.channel.value,
                plan.member_id,
                plan.guest_phone,
                plan.person_key,
                plan.request_key,
                *_BOOKING_DEFAULTS,
                plan.device_id,
                plan.staff_id,
                now,
            ),
        ).fetchone()[0]
    except sqlite3.IntegrityError:
        raise BookingError("bad_request_key", _l("Please go back and try again."), status=409) from None
    hub_key = hub_key or ""
    sealed = plan.sealed
    if plan.hub_key != hub_key:
        sealed = person_field_for_key(hub_key, plan.person_phone)
        last_hub_keys[plan.database] = hub_key
    raw.execute(
        _INSERT_EVENT_SQL,
        (str(uuid.uuid4()), "booking.created", 1, now, json.dumps({"booking_id": booking_id, **plan.event_base, **sealed})),
    )
    return TicketView(
        booking_id,
        plan.service_id,
        plan.service_name,
        plan.service_place,
        ticket,
        slot.day,
        slot.starts_at,
        BookingStatus.BOOKED,
        plan.channel,
        None if ahead is None else int(ahead),
        plan.masked_who,
        slot.starts_at - timedelta(minutes=plan.cancel_minutes),
    )


# A booking's statements, built once (SQLAlchemy then reuses their compiled SQL). Bind names
# b_* where a column of the same name is in the statement's SET or VALUES.
_booking_t = _booking_table
_slot_t = _slot_table
_counter_t = cast(Table, TicketCounter.__table__)
_PERSON_OPEN = (
    select(func.count(), func.coalesce(func.sum(case((_slot_t.c.starts_at == bindparam("b_starts", type_=UTCDateTime()), 1), else_=0)), 0))
    .select_from(_booking_t.outerjoin(_slot_t, _slot_t.c.id == _booking_t.c.slot_id))
    .where(
        _booking_t.c.service_id == bindparam("b_service"),
        _booking_t.c.person_key == bindparam("b_person"),
        _booking_t.c.status.in_(OPEN_STATUSES),
        _booking_t.c.day >= bindparam("b_today", type_=Date()),
    )
)
# The next number of the service's day (_next_ticket).
_NEXT_TICKET = (
    sqlite_insert(_counter_t)
    .values(last=1)
    .on_conflict_do_update(index_elements=["service_id", "day"], set_={"last": _counter_t.c.last + 1})
    .returning(_counter_t.c.last)
)
# people_ahead(): open tickets of the day before this one.
_AHEAD = (
    select(func.count())
    .select_from(_booking_t)
    .where(
        _booking_t.c.service_id == bindparam("b_service"),
        _booking_t.c.day == bindparam("b_day", type_=Date()),
        _booking_t.c.status.in_(OPEN_STATUSES),
        or_(
            _booking_t.c.queue_at < bindparam("b_queue_at", type_=UTCDateTime()),
            and_(_booking_t.c.queue_at == bindparam("b_queue_at", type_=UTCDateTime()), _booking_t.c.ticket_seq < bindparam("b_seq")),
        ),
    )
)
# The unit of work's statements (_book_unit), in SQLite's own words.
_OPEN_PARAMS = {f"open{n}": status.value for n, status in enumerate(OPEN_STATUSES)}
_OPEN_IN = "(" + ", ".join(f":{name}" for name in _OPEN_PARAMS) + ")"
# Its one read, before its writes: the booking this request key made (if any); the person's
# open bookings of the service and how many of them are at this very time (_PERSON_OPEN); the
# hub key; the open tickets of the day that will be ahead of this one (_AHEAD for the number
# the counter is about to give: its last + 1, or 1 on the day's first ticket). The person's
# bookings are found through their person_key index: the unary + keeps SQLite from taking the
# (service_id, day, ticket_seq) index instead, which read every booking of the service from
# today on, under the write lock (bench/booking.py: ~0.1 ms a booking and growing with the
# month's bookings; a person has a handful).
# The people ahead are counted only for a ticket of today (TicketView.people_ahead): the count
# reads every open ticket of the day (the ~40–80 a day of bench/booking.py's month: ~half of the
# one read's SQLite time, under the writer lock), and no other day's ticket shows it.
_AHEAD_SQL = (
    "(SELECT count(*) FROM booking WHERE service_id = :service AND day = :day AND status IN " + _OPEN_IN + " AND (queue_at < :starts"
    " OR (queue_at = :starts AND ticket_seq < coalesce((SELECT last FROM ticket_counter WHERE service_id = :service AND day = :day), 0) + 1)))"
)
_LOCKED_READ = (
    "SELECT count(*), coalesce(sum(CASE WHEN s.starts_at = :starts THEN 1 ELSE 0 END), 0),"
    " (SELECT id FROM booking WHERE request_key = :key),"
    " (SELECT person_key FROM booking WHERE request_key = :key),"
    " (SELECT hub_public_key FROM sync_state WHERE id = 1), {ahead}"
    " FROM booking b LEFT OUTER JOIN service_slot s ON s.id = b.slot_id"
    " WHERE +b.service_id = :service AND b.person_key = :person AND b.status IN " + _OPEN_IN + " AND +b.day >= :today"
)
_LOCKED_READ_SQL = _LOCKED_READ.replace("{ahead}", _AHEAD_SQL)
_LOCKED_READ_OTHER_DAY_SQL = _LOCKED_READ.replace("{ahead}", "NULL")
# The place, in one statement: the slot's row is created on first booking with this place
# taken, or one more place is taken if one is free. Its capacity follows today's schedule but
# never drops below what is already booked (as _upsert_slot_row): with schedule capacity E and
# b booked, a place is free when b < max(E, b), i.e. b < E, and the row then holds E. A full
# slot returns no row (DO UPDATE … WHERE false: nothing changed, nothing returned).
_TAKE_PLACE_SQL = (
    "INSERT INTO service_slot (service_id, day, starts_at, ends_at, capacity, booked, provider_id) VALUES (?, ?, ?, ?, ?, 1, ?)"
    " ON CONFLICT (service_id, starts_at) DO UPDATE SET capacity = max(excluded.capacity, service_slot.booked), booked = service_slot.booked + 1"
    " WHERE service_slot.booked < excluded.capacity RETURNING id"
)
# _NEXT_TICKET.
_NEXT_TICKET_SQL = "INSERT INTO ticket_counter (service_id, day, last) VALUES (?, ?, 1) ON CONFLICT (service_id, day) DO UPDATE SET last = ticket_counter.last + 1 RETURNING last"
# The booking as the ORM writes it: every column, the model's defaults for desk, call count, note.
_BOOKING_DEFAULTS = tuple(_booking_t.c[name].default.arg for name in ("desk", "call_count", "note"))  # type: ignore[union-attr]
_INSERT_BOOKING_SQL = (
    "INSERT INTO booking (service_id, slot_id, day, ticket_seq, ticket, queue_at, status, channel, member_id, phone, person_key, request_key,"
    " desk, call_count, note, device_id, staff_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
# The row record_event() writes (kiosk.sync.outbox), sent_at empty; the payload as SQLAlchemy's JSON type writes it.
_INSERT_EVENT_SQL = "INSERT INTO outbox_event (event_id, type, schema_version, occurred_at, payload) VALUES (?, ?, ?, ?, ?)"


class _SlotTaken(Exception):
    """Inside book(): the last place went to someone else (rolls the unit of work back)."""

    plan: _BookingPlan | None = None


_waitlist_t = cast(Table, WaitlistEntry.__table__)
_PROMOTIONS = (
    select(_waitlist_t.c.id)
    .where(_waitlist_t.c.person_key == bindparam("person_key"), _waitlist_t.c.status == WaitlistStatus.PROMOTED, _waitlist_t.c.notified_at.is_(None))
    .limit(1)
)


# A booking request's reads in one statement (_read_plan), on the unit of work's connection under
# the writer lock: each statement there costs its Python and a release of the GIL, which the
# unit then waits to get back from the other waitress threads while it holds the lock
# (docs/benchmarks.md "Booking, part 8"). Its columns: the member (by card, or the one with this
# phone; none for a guest), the service (ServiceRow's columns), the no-shows that count towards
# a block (_NOSHOWS: the count and the last; the window's start is :now less the service's
# noshow_days, computed by SQLite on the whole seconds and given the microseconds back: the
# string _sql_moment writes for it), the booking this request key made, whether a waitlist place
# waits to be shown (_PROMOTIONS), the slot's day of the schedule as JSON rows (templates of
# that weekday as kind 0, the override as 1, a closure as 2: _day_schedule), then what
# _LOCKED_READ_SQL reads (the person's open bookings of the service and how many at this very
# time, the hub key, the people ahead). The person's key (m:<id> or p:<phone>) is found here
# too, so their rows are found through their person_key indexes (the unary + as in
# _LOCKED_READ_SQL).
_PERSON_KEY = "coalesce('m:' || m.id, :guest)"
_LIFTED = "(SELECT max(lifted_at) FROM booking_block_lift WHERE person_key = " + _PERSON_KEY + ")"
_NOSHOWS_WHERE = (
    " FROM booking b WHERE b.person_key = " + _PERSON_KEY + " AND b.status = :no_show"
    " AND b.closed_at > datetime(:now, '-' || s.noshow_days || ' days') || :now_fraction AND (" + _LIFTED + " IS NULL OR b.closed_at > " + _LIFTED + ")"
)
_MINE_WHERE = (
    " FROM booking b LEFT OUTER JOIN service_slot sl ON sl.id = b.slot_id"
    " WHERE +b.service_id = :service AND b.person_key = " + _PERSON_KEY + " AND b.status IN " + _OPEN_IN + " AND +b.day >= :today"
)
# Joins and scalar subqueries, no WITH: SQLite materialises a CTE used twice or holding an
# aggregate into an ephemeral table (allocated and zeroed pages: ~130,000 more instructions a
# booking than the separate reads, callgrind), while a correlated scalar subquery is a few
# index steps. The constant row keeps one answer row when neither member nor service is found.
_PLAN_READ_SQL = (
    "SELECT m.id, m.name, m.phone, m.age_band, m.active, " + ", ".join(f"s.{name}" for name in _SERVICE_COLUMNS) + ","
    " (SELECT count(*)" + _NOSHOWS_WHERE + "), (SELECT max(b.closed_at)" + _NOSHOWS_WHERE + "),"
    " (SELECT id FROM booking WHERE request_key = :key),"
    " (SELECT person_key FROM booking WHERE request_key = :key),"
    " EXISTS (SELECT 1 FROM booking_waitlist WHERE person_key = " + _PERSON_KEY + " AND status = :promoted AND notified_at IS NULL),"
    " (SELECT json_group_array(json_array(kind, id, a, b, c, starts, ends, minutes, capacity, provider)) FROM ("
    "SELECT 0 AS kind, id, weekday AS a, valid_from AS b, valid_until AS c, starts, ends, slot_minutes AS minutes, capacity, provider_id AS provider"
    " FROM service_template WHERE service_id = :service AND weekday = :weekday"
    " UNION ALL SELECT 1, id, closed, day, NULL, starts, ends, slot_minutes, capacity, provider_id FROM service_override WHERE service_id = :service AND day = :day"
    " UNION ALL SELECT 2, id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM closure_day WHERE day = :day)),"
    " (SELECT count(*)" + _MINE_WHERE + "), (SELECT coalesce(sum(CASE WHEN sl.starts_at = :starts THEN 1 ELSE 0 END), 0)" + _MINE_WHERE + "),"
    " (SELECT hub_public_key FROM sync_state WHERE id = 1), {ahead}"
    " FROM (SELECT 1) LEFT JOIN member m ON {who} LEFT JOIN service s ON s.id = :service"
)
# As _LOCKED_READ_SQL, the people ahead only for a ticket of today (the OTHER_DAY ones: NULL).
_PLAN_READ_BY_PHONE_SQL = _PLAN_READ_SQL.replace("{who}", "m.phone = :phone").replace("{ahead}", _AHEAD_SQL)
_PLAN_READ_BY_MEMBER_SQL = _PLAN_READ_SQL.replace("{who}", "m.id = :member").replace("{ahead}", _AHEAD_SQL)
_PLAN_READ_BY_PHONE_OTHER_DAY_SQL = _PLAN_READ_SQL.replace("{who}", "m.phone = :phone").replace("{ahead}", "NULL")
_PLAN_READ_BY_MEMBER_OTHER_DAY_SQL = _PLAN_READ_SQL.replace("{who}", "m.id = :member").replace("{ahead}", "NULL")


@dataclass(frozen=True)
class WaitlistResult:
    entry_id: int
    service_name: str
    starts_at: datetime
    position: int  # 1: first in line


def join_waitlist(
    session: Session,
    service_id: Any,
    slot_key: str | None,
    *,
    rules: BookingRules,
    phone: str | None = None,
    member_id: int | None = None,
    now: datetime | None = None,
) -> WaitlistResult:
    """Wait for a place in a full slot; a cancellation gives it to the first in line."""
    now = now or utcnow()
    with write_transaction(session):
        person = identify(session, phone=phone, member_id=member_id)
        service = get_service(session, service_id, active_only=True)
        slot = find_slot(session, service, slot_key, rules.zone)
        _check_rules(session, service, slot, person, now, rules.zone, BookingChannel.KIOSK)
        if slot.free:
            raise BookingError("slot_has_places", _l("This time still has places. Please book it directly."), status=409)
        entry = WaitlistEntry(
            service_id=service.id, starts_at=slot.starts_at, member_id=person.member.id if person.member else None, phone=person.phone, person_key=person.key
        )
        session.add(entry)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise BookingError("already_waiting", _l("You are already on the waiting list for this time."), status=409) from None
        record_event(
            session,
            "booking.waitlisted",
            {
                "service_id": service.id,
                "category": service.category.value,
                "starts_at": slot.starts_at.isoformat(),
                **person_field(session, _person_phone(person)),
                "device": rules.device_id,
            },
            occurred_at=now,
        )
        position = int(
            session.scalar(
                select(func.count())
                .select_from(WaitlistEntry)
                .where(WaitlistEntry.service_id == service.id, WaitlistEntry.starts_at == slot.starts_at, WaitlistEntry.status == WaitlistStatus.WAITING)
            )
            or 0
        )
        result = WaitlistResult(entry.id, f"{service.name}", slot.starts_at, position)
    return result


def _promote(session: Session, service: Service, slot: Slot, rules: BookingRules, now: datetime) -> Booking | None:
    """Give a freed place to the first person on the waitlist who may still book it."""
    entries = session.scalars(
        select(WaitlistEntry)
        .where(WaitlistEntry.service_id == service.id, WaitlistEntry.starts_at == slot.starts_at, WaitlistEntry.status == WaitlistStatus.WAITING)
        .order_by(WaitlistEntry.id)
    ).all()
    today = local_today(now, rules.zone)
    for entry in entries:
        if _open_count(session, service.id, entry.person_key, today) >= service.per_person_limit:
            entry.status = WaitlistStatus.EXPIRED
            continue
        if not _take_place(session, slot.id):
            return None
        member = _member(session, entry.member_id) if entry.member_id else None
        person = Person(entry.person_key, member, entry.phone)
        booking = _add_booking(
            session,
            service,
            slot_id=slot.id,
            day=slot.day,
            queue_at=slot.starts_at,
            person=person,
            channel=BookingChannel.WAITLIST,
            request_key=None,
            rules=rules,
            now=now,
        )
        entry.status, entry.booking_id = WaitlistStatus.PROMOTED, booking.id
        return booking
    return None


@dataclass(frozen=True)
class CancelResult:
    ticket: TicketView
    promoted_ticket: str | None  # the waitlist's first person got the place (staff see it)


def cancel(
    session: Session,
    booking_id: Any,
    *,
    rules: BookingRules,
    staff: StaffUser | None = None,
    reason: str = "",
    now: datetime | None = None,
    remote_addr: str = "",
) -> CancelResult:
    """Cancel a booking: visitors within the cancellation window, staff at any time before it
    is served. The place goes to the first on the waitlist."""
    now = now or utcnow()
    with write_transaction(session):
        booking = get_booking(session, booking_id)
        service = booking.service
        if booking.status == BookingStatus.CANCELLED:
            raise BookingError("already_cancelled", _l("This booking has already been cancelled."), status=409)
        if booking.status != BookingStatus.BOOKED and not (staff is not None and booking.status == BookingStatus.CALLED):
            raise BookingError("not_cancellable", _l("This ticket has already been used and cannot be cancelled."), status=409)
        slot = booking.slot
        if staff is None:
            if slot is None:
                raise BookingError("not_cancellable", _l("This ticket has already been used and cannot be cancelled."), status=409)
            if now > slot.starts_at - timedelta(minutes=service.cancel_minutes):
                raise BookingError(
                    "cancel_too_late",
                    _l("Bookings can be cancelled up to %(n)d minutes before the start. Please ask the staff at the desk.", n=service.cancel_minutes),
                    status=409,
                )
        changed = session.execute(
            update(Booking)
            .where(Booking.id == booking.id, Booking.status.in_(OPEN_STATUSES))
            .values(status=BookingStatus.CANCELLED, closed_at=now, note=reason[:200])
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            raise BookingError("already_cancelled", _l("This booking has already been cancelled."), status=409)
        session.refresh(booking)
        promoted_ticket = None
        if slot is not None:
            session.execute(update(Slot).where(Slot.id == slot.id, Slot.booked > 0).values(booked=Slot.booked - 1))
            session.refresh(slot)
            if slot.starts_at > now:
                promoted = _promote(session, service, slot, rules, now)
                promoted_ticket = promoted.ticket if promoted is not None else None
        phone = booking.member.phone if booking.member is not None else booking.phone
        payload = _event_payload(session, booking, service, phone, booking.member, rules) | {"by": "staff" if staff else "visitor"}
        record_event(session, "booking.cancelled", payload, occurred_at=now)
        if staff is not None:
            record_audit(session, staff, "booking.cancel", target=f"booking:{booking.id}", detail=reason[:200], remote_addr=remote_addr)
        result = CancelResult(ticket_view(session, booking), promoted_ticket)
    return result


def lookup(session: Session, *, phone: str | None, ticket: str | None, now: datetime, zone: ZoneInfo) -> Booking:
    """Find a ticket by its number (A012) and the phone it was booked with."""
    try:
        number = parse_phone(phone)
    except PhoneError as error:
        raise BookingError(error.code, error.message, field="phone") from None
    code = unicodedata.normalize("NFKC", ticket or "").strip().upper().replace(" ", "")
    match = TICKET_TEXT.match(code)
    if match is None:
        raise BookingError("bad_ticket", _l("A ticket number is a letter and digits, such as A012."), field="ticket")
    code = f"{match.group(1)}{int(match.group(2)):03d}"
    member = session.scalar(select(Member).where(Member.phone == number))
    keys = [f"p:{number}"] + ([f"m:{member.id}"] if member is not None else [])
    booking = session.scalar(
        select(Booking)
        .where(Booking.ticket == code, Booking.person_key.in_(keys), Booking.day >= local_today(now, zone))
        .order_by(Booking.day, Booking.id.desc())
        .limit(1)
    )
    if booking is None:
        raise BookingError("unknown_ticket", _l("We could not find this ticket. Please check the number and the mobile number."), status=404)
    return booking


# ---- the desk: walk-ins and the queue ----


def issue_walk_in(
    session: Session,
    service_id: Any,
    *,
    rules: BookingRules,
    staff: StaffUser | None,
    phone: str | None = "",
    now: datetime | None = None,
    remote_addr: str = "",
) -> TicketView:
    """A ticket for today from the same numbering, queued by arrival time."""
    now = now or utcnow()
    with write_transaction(session):
        service = get_service(session, service_id, active_only=True)
        person = identify(session, phone=phone) if (phone or "").strip() else None
        seq_key = None
        if person is None:
            seq_key = f"w:{uuid.uuid4().hex[:20]}"
            person = Person(seq_key, None, None)
        booking = _add_booking(
            session,
            service,
            slot_id=None,
            day=local_today(now, rules.zone),
            queue_at=now,
            person=person,
            channel=BookingChannel.WALK_IN,
            request_key=None,
            rules=rules,
            now=now,
            staff=staff,
            person_key=seq_key,
        )
        record_audit(session, staff, "booking.walk_in", target=f"booking:{booking.id}", detail=f"service={service.id}", remote_addr=remote_addr)
        result = ticket_view(session, booking)
    return result


def queue(session: Session, day: date, service_id: int | None = None) -> list[Booking]:
    query = select(Booking).where(Booking.day == day).order_by(Booking.service_id, Booking.queue_at, Booking.ticket_seq)
    if service_id is not None:
        query = query.where(Booking.service_id == service_id)
    return list(session.scalars(query))


def _desk(raw: Any) -> str:
    desk = unicodedata.normalize("NFKC", str(raw or "")).strip()
    if not (desk.isdigit() and 1 <= int(desk) <= 99):
        raise BookingError("bad_desk", _l("Please give the desk number (1–99)."), field="desk")
    return str(int(desk))


def call_next(session: Session, service_id: Any, *, desk: Any, staff: StaffUser, rules: BookingRules, now: datetime | None = None) -> Booking:
    now = now or utcnow()
    desk_no = _desk(desk)
    with write_transaction(session):
        service = get_service(session, service_id)
        today = local_today(now, rules.zone)
        booking = session.scalar(
            select(Booking)
            .where(Booking.service_id == service.id, Booking.day == today, Booking.status == BookingStatus.BOOKED)
            .order_by(Booking.queue_at, Booking.ticket_seq)
            .limit(1)
        )
        if booking is None:
            raise BookingError("queue_empty", _l("Nobody is waiting for this service."), status=409)
        booking.status, booking.desk, booking.called_at, booking.call_count = BookingStatus.CALLED, desk_no, now, booking.call_count + 1
        record_audit(session, staff, "booking.call", target=f"booking:{booking.id}", detail=f"desk={desk_no}")
    return booking


def recall(session: Session, booking_id: Any, *, staff: StaffUser, desk: Any = None, now: datetime | None = None) -> Booking:
    """Call the same ticket again (the display shows it again and chimes); or call a waiting
    ticket out of turn."""
    now = now or utcnow()
    with write_transaction(session):
        booking = get_booking(session, booking_id)
        if booking.status not in OPEN_STATUSES:
            raise BookingError("not_waiting", _l("This ticket is no longer waiting."), status=409)
        if desk not in (None, ""):
            booking.desk = _desk(desk)
        elif not booking.desk:
            raise BookingError("bad_desk", _l("Please give the desk number (1–99)."), field="desk")
        booking.status, booking.called_at, booking.call_count = BookingStatus.CALLED, now, booking.call_count + 1
        record_audit(session, staff, "booking.recall", target=f"booking:{booking.id}", detail=f"desk={booking.desk}")
    return booking


def _close(session: Session, booking: Booking, status: BookingStatus, now: datetime) -> None:
    changed = session.execute(update(Booking).where(Booking.id == booking.id, Booking.status.in_(OPEN_STATUSES)).values(status=status, closed_at=now))
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise BookingError("not_waiting", _l("This ticket is no longer waiting."), status=409)
    session.refresh(booking)


def mark_served(
    session: Session,
    booking_id: Any,
    *,
    staff: StaffUser,
    rules: BookingRules,
    provider_id: Any = None,
    minutes: Any = None,
    now: datetime | None = None,
    remote_addr: str = "",
) -> Booking:
    """Served: records the volunteer's time (given, or the service's duration) and awards the
    service's points to a member."""
    now = now or utcnow()
    with write_transaction(session):
        booking = get_booking(session, booking_id)
        service = booking.service
        given = _int(minutes, "minutes", 1, MAX_SERVED_MINUTES, optional=True) if minutes not in (None, "") else None
        if provider_id not in (None, ""):
            provider = _provider_id(session, service, provider_id)
        elif booking.slot is not None:
            provider = booking.slot.provider_id
        else:
            # A walk-in has no slot to say who gave the service: a service given by one provider
            # is theirs (else volunteer hours would count it under no one); with several, the
            # desk chooses (views.served), or it stays unassigned.
            provider = sole_provider_id(service)
        _close(session, booking, BookingStatus.SERVED, now)
        booking.provider_id = provider
        booking.served_minutes = given or service.duration_minutes
        if booking.member_id is not None and service.points_on_serve:
            award_points(session, booking.member_id, service.points_on_serve, PointsReason.BOOKING_SERVED, reference=f"booking:{booking.id}", actor=staff)
        phone = booking.member.phone if booking.member is not None else booking.phone
        payload = _event_payload(session, booking, service, phone, booking.member, rules) | {
            "minutes": booking.served_minutes,
            "points": service.points_on_serve if booking.member_id else 0,
        }
        record_event(session, "booking.served", payload, occurred_at=now)
        record_audit(session, staff, "booking.served", target=f"booking:{booking.id}", remote_addr=remote_addr)
    return booking


def mark_no_show(session: Session, booking_id: Any, *, staff: StaffUser, rules: BookingRules, now: datetime | None = None, remote_addr: str = "") -> Booking:
    now = now or utcnow()
    with write_transaction(session):
        booking = get_booking(session, booking_id)
        _close(session, booking, BookingStatus.NO_SHOW, now)
        phone = booking.member.phone if booking.member is not None else booking.phone
        record_event(session, "booking.no_show", _event_payload(session, booking, booking.service, phone, booking.member, rules), occurred_at=now)
        record_audit(session, staff, "booking.no_show", target=f"booking:{booking.id}", remote_addr=remote_addr)
    return booking


@dataclass(frozen=True)
class Calling:
    """One line of the call display: never a name or a phone."""

    label: str  # 理发 A012
    desk: str
    called_at: datetime
    call_count: int


def now_calling(session: Session, day: date, limit: int = 6) -> list[Calling]:
    rows = session.execute(
        select(Service.name, Booking.ticket, Booking.desk, Booking.called_at, Booking.call_count)
        .join(Service, Service.id == Booking.service_id)
        .where(Booking.day == day, Booking.status == BookingStatus.CALLED)
        .order_by(Booking.called_at.desc())
        .limit(limit)
    )
    return [Calling(f"{name} {ticket}", desk, called_at, count) for name, ticket, desk, called_at, count in rows if called_at is not None]


def waitlist_for_day(session: Session, day: date, zone: ZoneInfo) -> list[WaitlistEntry]:
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    return list(
        session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.starts_at >= start, WaitlistEntry.starts_at < start + timedelta(days=1))
            .order_by(WaitlistEntry.starts_at, WaitlistEntry.id)
        )
    )


# ---- figures, reports ----


def today_figures(session: Session, day: date) -> dict[str, int]:
    rows = session.execute(select(Booking.status, func.count()).where(Booking.day == day).group_by(Booking.status)).all()
    counts = {status: int(n) for status, n in rows}
    return {
        "booked": sum(n for s, n in counts.items() if s != BookingStatus.CANCELLED),
        "waiting": counts.get(BookingStatus.BOOKED, 0) + counts.get(BookingStatus.CALLED, 0),
        "served": counts.get(BookingStatus.SERVED, 0),
        "no_show": counts.get(BookingStatus.NO_SHOW, 0),
    }


def _month_range(month: str) -> tuple[date, date]:
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise BookingError("bad_month", _l("Please choose a month."), status=400) from None
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following


@dataclass(frozen=True)
class ProviderHours:
    provider: str
    service: str
    people: int
    minutes: int

    @property
    def hours(self) -> float:
        return round(self.minutes / 60, 1)


def volunteer_hours(session: Session, month: str) -> list[ProviderHours]:
    first, following = _month_range(month)
    rows = session.execute(
        select(Provider.name, Service.name, func.count(), func.coalesce(func.sum(Booking.served_minutes), 0))
        .join(Service, Service.id == Booking.service_id)
        .outerjoin(Provider, Provider.id == Booking.provider_id)
        .where(Booking.status == BookingStatus.SERVED, Booking.day >= first, Booking.day < following)
        .group_by(Provider.name, Service.name)
        .order_by(Service.name, Provider.name)
    )
    return [ProviderHours(provider or "", service, int(people or 0), int(minutes or 0)) for provider, service, people, minutes in rows]


def month_view(session: Session, month: str) -> tuple[list[date], list[tuple[Service, dict[date, int]]]]:
    """Bookings (not cancelled) per service and day of a month."""
    first, following = _month_range(month)
    counts: dict[int, dict[date, int]] = defaultdict(dict)
    for service_id, day, n in session.execute(
        select(Booking.service_id, Booking.day, func.count())
        .where(Booking.day >= first, Booking.day < following, Booking.status != BookingStatus.CANCELLED)
        .group_by(Booking.service_id, Booking.day)
    ):
        counts[service_id][day] = int(n)
    days = [first + timedelta(days=i) for i in range((following - first).days)]
    return days, [(s, counts.get(s.id, {})) for s in list_services(session)]


def bookings_between(session: Session, first: date, following: date) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking).where(Booking.day >= first, Booking.day < following).order_by(Booking.day, Booking.service_id, Booking.queue_at, Booking.ticket_seq)
        )
    )


def month_bookings(session: Session, month: str) -> list[Booking]:
    first, following = _month_range(month)
    return bookings_between(session, first, following)


def audit_export(session: Session, actor: StaffUser, action: str, detail: str, remote_addr: str = "") -> None:
    """Every export of bookings is in the audit log (who took which month, phones full or masked)."""
    with write_transaction(session):
        record_audit(session, actor, action, detail=detail, remote_addr=remote_addr)
