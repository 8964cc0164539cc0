"""Activity check-in: activities and their sessions, signed QR tokens, the check-in itself.

Every check-in, whichever way it arrives (poster QR, rotating QR, member card or phone at the
kiosk, staff at the desk), goes through check_in(): one serialised write that refuses with a
reason code or writes the check-in, its points entry and its outbox event together.
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Protocol, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Date, Table, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiosk.checkin.models import (
    Activity,
    ActivityCategory,
    ActivityStatus,
    CheckIn,
    CheckinMethod,
    CheckinPolicy,
    CheckinStatus,
    KioskLock,
)
from kiosk.db import Prebuilt, UTCDateTime, grouped_write, utcnow, write_transaction
from kiosk.errors import KioskError, several
from kiosk.i18n import _l
from kiosk.identify.services import PhoneError, parse_phone
from kiosk.members.models import AgeBand, Member
from kiosk.points.models import PointsEntry, PointsReason
from kiosk.points.services import MAX_DELTA, PointsError, award_points
from kiosk.signing import TokenSigner
from kiosk.staff.models import StaffUser
from kiosk.staff.services import record_audit
from kiosk.sync.models import OutboxEvent, SyncState
from kiosk.sync.outbox import last_hub_keys, person_field_for_key, record_event
from kiosk.validation import clean_text, parse_whole_number

TOKEN_PREFIX = "C1"
PASS_PREFIX = "K1"
TOKEN_PURPOSE = "checkin-code"
PASS_PURPOSE = "checkin-pass"
MAX_POINTS = 1000
MAX_CAPACITY = 10_000
MAX_WINDOW_MINUTES = 240
WEEK = timedelta(days=7)


class CheckinError(KioskError):
    pass


# ---- activities ----


@dataclass(frozen=True)
class Occurrence:
    """One session of an activity and its check-in window."""

    starts_at: datetime
    ends_at: datetime
    opens_at: datetime
    closes_at: datetime
    session_date: date  # local date


class Schedule(Protocol):
    """What the session arithmetic reads of an activity (an Activity, or a check-in's Core row)."""

    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def weekly(self) -> bool: ...
    @property
    def repeat_until(self) -> date | None: ...
    @property
    def opens_minutes_before(self) -> int: ...
    @property
    def closes_minutes_after(self) -> int: ...


def _occurrence(activity: Schedule, index: int, zone: ZoneInfo) -> Occurrence:
    start = activity.starts_at + index * WEEK
    end = activity.ends_at + index * WEEK
    return Occurrence(
        start,
        end,
        start - timedelta(minutes=activity.opens_minutes_before),
        end + timedelta(minutes=activity.closes_minutes_after),
        start.astimezone(zone).date(),
    )


def _occurrence_count(activity: Schedule, zone: ZoneInfo) -> int | None:
    """How many sessions a weekly activity has (None: no end date)."""
    if not activity.weekly:
        return 1
    if activity.repeat_until is None:
        return None
    first = activity.starts_at.astimezone(zone).date()
    return max(1, (activity.repeat_until - first).days // 7 + 1)


def current_occurrence(activity: Schedule, now: datetime, zone: ZoneInfo) -> Occurrence:
    """The session whose check-in window contains now, or CheckinError not_yet_open / closed."""
    count = _occurrence_count(activity, zone)
    index = 0
    if activity.weekly:
        index = max(0, int((now - activity.starts_at) / WEEK))
        if count is not None:
            index = min(index, count - 1)
    for candidate in (index, index + 1):
        if count is not None and candidate >= count:
            continue
        occurrence = _occurrence(activity, candidate, zone)
        if occurrence.opens_at <= now <= occurrence.closes_at:
            return occurrence
        if now < occurrence.opens_at:
            raise CheckinError(
                "not_yet_open",
                _l("Check-in opens at %(time)s.", time=occurrence.opens_at.astimezone(zone).strftime("%m-%d %H:%M")),
                status=409,
            )
    raise CheckinError("closed", _l("Check-in for this activity has closed."), status=409)


def next_occurrence(activity: Schedule, now: datetime, zone: ZoneInfo) -> Occurrence | None:
    count = _occurrence_count(activity, zone)
    index = max(0, int((now - activity.starts_at) / WEEK)) if activity.weekly else 0
    for candidate in (index, index + 1):
        if count is not None and candidate >= count:
            return None
        occurrence = _occurrence(activity, candidate, zone)
        if occurrence.closes_at >= now:
            return occurrence
    return None


def _text(raw: str | None, limit: int, field: str, *, required: bool = False) -> str:
    return clean_text(raw, limit, field, error=CheckinError, required=required)


def _int(raw, field: str, low: int, high: int) -> int:
    return parse_whole_number(raw, field, error=CheckinError, low=low, high=high, signed=False)


def _optional_int(raw, field: str, low: int, high: int) -> int | None:
    return parse_whole_number(raw, field, error=CheckinError, low=low, high=high, signed=False, optional=True)


def _local_datetime(raw: str | None, zone: ZoneInfo, field: str) -> datetime:
    try:
        value = datetime.fromisoformat((raw or "").strip())
    except ValueError:
        raise CheckinError("bad_datetime", _l("Please enter a date and time."), field=field) from None
    if not 2000 <= value.year <= 2100:  # year 1 would overflow converting to UTC (a 500)
        raise CheckinError("bad_datetime", _l("Please enter a date and time."), field=field)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(ZoneInfo("UTC"))


@dataclass(frozen=True)
class ActivityFields:
    """An activity form, parsed: every value checked and in its stored type."""

    title: str
    category: ActivityCategory
    description: str
    place: str
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC
    weekly: bool
    repeat_until: date | None
    capacity: int | None  # None: no limit
    points: int
    policy: CheckinPolicy
    opens_minutes_before: int
    closes_minutes_after: int


def _choice(enum_type, raw: str | None, code: str, message, field: str):
    try:
        return enum_type(raw or "")
    except ValueError:
        raise CheckinError(code, message, field=field) from None


def _repeat_until(raw: str | None, weekly: bool, starts_at: datetime, zone: ZoneInfo) -> date | None:
    text = (raw or "").strip()
    if not weekly or not text:
        return None
    try:
        until = date.fromisoformat(text)
    except ValueError:
        raise CheckinError("bad_date", _l("Please enter a date."), field="repeat_until") from None
    if not 2000 <= until.year <= 2100:
        raise CheckinError("bad_date", _l("Please enter a date."), field="repeat_until")
    if until < starts_at.astimezone(zone).date():
        raise CheckinError("repeat_before_start", _l("The last date must not be before the first session."), field="repeat_until")
    return until


def parse_activity(
    *,
    title: str | None,
    category: str | None,
    description: str | None,
    place: str | None,
    starts_at: str | None,
    ends_at: str | None,
    weekly: bool,
    repeat_until: str | None,
    capacity,
    points,
    policy: str | None,
    opens_minutes_before=30,
    closes_minutes_after=30,
    zone: ZoneInfo,
) -> ActivityFields:
    """Check a whole activity form: every field's refusal is collected, so the form shows them
    all at once (raises one error carrying ``all_errors``), else the parsed fields."""
    errors: list[KioskError] = []

    def check(parse, *args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except KioskError as error:
            errors.append(error)
            return None

    clean_title = check(_text, title, 60, "title", required=True)
    category_value = check(_choice, ActivityCategory, category, "bad_category", _l("Please choose a category."), "category")
    clean_description = check(_text, description, 500, "description")
    clean_place = check(_text, place, 60, "place")
    start = check(_local_datetime, starts_at, zone, "starts_at")
    end = check(_local_datetime, ends_at, zone, "ends_at")
    capacity_value = check(_optional_int, capacity, "capacity", 1, MAX_CAPACITY)
    points_value = check(_int, points if points not in (None, "") else 0, "points", 0, MAX_POINTS)
    policy_value = check(_choice, CheckinPolicy, policy, "bad_policy", _l("Please choose a check-in rule."), "policy")
    opens = check(_int, opens_minutes_before, "opens_minutes_before", 0, MAX_WINDOW_MINUTES)
    closes = check(_int, closes_minutes_after, "closes_minutes_after", 0, MAX_WINDOW_MINUTES)
    until = None
    if start is not None and end is not None:
        if end <= start:
            errors.append(CheckinError("ends_before_start", _l("The end must be after the start."), field="ends_at"))
        elif end - start > timedelta(hours=24):
            errors.append(CheckinError("too_long", _l("One session can last at most 24 hours; use a weekly activity for a series."), field="ends_at"))
        until = check(_repeat_until, repeat_until, bool(weekly), start, zone)
    if errors:
        raise several(errors)
    return ActivityFields(
        title=clean_title,
        category=category_value,
        description=clean_description,
        place=clean_place,
        starts_at=start,
        ends_at=end,
        weekly=bool(weekly),
        repeat_until=until,
        capacity=capacity_value,
        points=points_value,
        policy=policy_value,
        opens_minutes_before=opens,
        closes_minutes_after=closes,
    )


def _refuse_read_only(activity: Activity | None) -> None:
    if activity is not None and activity.read_only:
        raise CheckinError("read_only", _l("District activities can only be changed by the district."), status=403)


def save_activity(
    session: Session,
    activity: Activity | None,
    *,
    zone: ZoneInfo,
    actor: StaffUser | None,
    remote_addr: str = "",
    **form,
) -> Activity:
    """Create (``activity`` None) or update an activity from its form fields (see
    parse_activity), audited, as one unit of work."""
    _refuse_read_only(activity)
    fields = parse_activity(zone=zone, **form)
    with write_transaction(session):
        return _store_activity(session, activity, fields, actor=actor, remote_addr=remote_addr)


def _store_activity(session: Session, activity: Activity | None, fields: ActivityFields, *, actor: StaffUser | None, remote_addr: str) -> Activity:
    created = activity is None
    if activity is None:
        activity = Activity(source="centre")
        session.add(activity)
    for name, value in asdict(fields).items():
        setattr(activity, name, value)
    session.flush()
    record_audit(session, actor, "activity.create" if created else "activity.update", target=f"activity:{activity.id}", remote_addr=remote_addr)
    return activity


def set_activity_status(session: Session, activity: Activity, status: ActivityStatus, *, actor: StaffUser, remote_addr: str = "") -> None:
    with write_transaction(session):
        _refuse_read_only(activity)
        activity.status = status
        record_audit(session, actor, f"activity.{status.value}", target=f"activity:{activity.id}", remote_addr=remote_addr)


def get_activity(session: Session, activity_id) -> Activity:
    try:
        activity = session.get(Activity, int(activity_id))
    except (TypeError, ValueError):
        activity = None
    if activity is None:
        raise CheckinError("unknown_activity", _l("This activity does not exist."), status=404)
    return activity


def running_activities(session: Session, now: datetime, zone: ZoneInfo) -> list[tuple[Activity, Occurrence]]:
    """Activities whose check-in window is open now (what the kiosk's check-in tile lists)."""
    running = []
    for activity in session.scalars(select(Activity).where(Activity.status == ActivityStatus.ACTIVE).order_by(Activity.starts_at)):
        try:
            running.append((activity, current_occurrence(activity, now, zone)))
        except CheckinError:
            continue
    return running


def list_activities(session: Session) -> list[Activity]:
    return list(session.scalars(select(Activity).order_by(Activity.starts_at.desc())))


# ---- QR tokens ----


def poster_token(activity: Activity, signer: TokenSigner, centre_code: str) -> str:
    return signer.sign(f"{TOKEN_PREFIX}.{centre_code}.{activity.id}.P")


def rotation_step(now: datetime, step_seconds: int) -> int:
    return int(now.timestamp()) // step_seconds


def rotating_token(activity: Activity, signer: TokenSigner, centre_code: str, step: int) -> str:
    return signer.sign(f"{TOKEN_PREFIX}.{centre_code}.{activity.id}.R{step}")


def looks_like_checkin_code(code: str) -> bool:
    return code.startswith(TOKEN_PREFIX + ".")


@dataclass(frozen=True)
class ScannedCode:
    activity_id: int
    method: CheckinMethod


def read_checkin_token(token: str, signer: TokenSigner, centre_code: str, now: datetime, step_seconds: int) -> ScannedCode:
    """Check a scanned check-in code; the activity's own window is checked at check-in."""
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != TOKEN_PREFIX or not parts[2].isdigit() or not (parts[3] == "P" or (parts[3][:1] == "R" and parts[3][1:].isdigit())):
        raise CheckinError("token_invalid", _l("This is not a check-in code of ours."), status=400)
    if parts[1] != centre_code:
        raise CheckinError("wrong_centre", _l("This check-in code belongs to another centre."), status=403)
    if signer.verify(token) is None:
        raise CheckinError("token_tampered", _l("This check-in code is not genuine."), status=403)
    if parts[3] == "P":
        return ScannedCode(int(parts[2]), CheckinMethod.POSTER)
    age = rotation_step(now, step_seconds) - int(parts[3][1:])
    if not 0 <= age <= 1:  # the current step and one step of grace
        raise CheckinError("token_expired", _l("This code has changed. Please scan the code on the screen again."), status=410)
    return ScannedCode(int(parts[2]), CheckinMethod.ROTATING)


PASS_CLOCK_SKEW_SECONDS = 60


def issue_pass(scanned: ScannedCode, signer: TokenSigner, centre_code: str, now: datetime) -> str:
    """After a phone opens a valid code, it gets this pass to type its number at leisure."""
    # The nonce makes each phone's pass its own: the check-ins one pass may make are counted
    # (PASS_CHECKIN_LIMIT), and phones opening the poster in the same second must not share.
    nonce = secrets.token_hex(6)
    return signer.sign(f"{PASS_PREFIX}.{centre_code}.{scanned.activity_id}.{int(now.timestamp())}.{scanned.method.value}.{nonce}")


def read_pass(token: str | None, signer: TokenSigner, centre_code: str, activity_id: int, now: datetime, minutes: int) -> CheckinMethod:
    payload = signer.verify(token or "")
    parts = (payload or "").split(".")
    if payload is None or len(parts) != 6 or parts[0] != PASS_PREFIX or parts[1] != centre_code or not parts[3].isdigit():
        raise CheckinError("token_tampered", _l("This check-in page is not genuine. Please scan the code again."), status=403)
    if parts[2] != str(activity_id):
        raise CheckinError("wrong_activity", _l("This check-in page belongs to another activity. Please scan the code again."), status=403)
    if int(parts[3]) > now.timestamp() + PASS_CLOCK_SKEW_SECONDS:
        # Only this server signs passes: one from the future means its clock was wrong.
        raise CheckinError("token_expired", _l("This check-in page has expired. Please scan the code again."), status=410)
    if now.timestamp() - int(parts[3]) > minutes * 60:
        raise CheckinError("token_expired", _l("This check-in page has expired. Please scan the code again."), status=410)
    try:
        return CheckinMethod(parts[4])
    except ValueError:
        raise CheckinError("token_tampered", _l("This check-in page is not genuine. Please scan the code again."), status=403) from None


# ---- checking in ----


@dataclass(frozen=True)
class CheckinResult:
    """What the screens show afterwards, taken inside the transaction (the ORM objects expire
    at commit and would cost another round of queries to read again)."""

    checkin_id: int
    activity_id: int
    activity_title: str
    member_name: str | None  # None: a guest
    phone: str | None  # the guest's number (for the masked confirmation)
    points: int
    member_id: int | None = None
    balance: int | None = None  # the member's points right after this check-in (None: a guest)


@dataclass(frozen=True)
class CheckinRules:
    """The configuration check_in needs (plain values: no Flask here)."""

    zone: ZoneInfo
    device_id: str
    district_key: str
    repeat_minutes: int = 5


def _already() -> CheckinError:
    return CheckinError("already_checked_in", _l("You have already checked in. No need to do it again."), status=409)


def check_in(
    session: Session,
    activity_id: int,
    *,
    rules: CheckinRules,
    method: CheckinMethod,
    member: Member | None = None,
    phone: str | None = None,
    staff: StaffUser | None = None,
    reason: str = "",
    now: datetime | None = None,
    remote_addr: str = "",
) -> CheckinResult:
    """The one door for every check-in: refuses with a reason code, or writes the check-in, its
    points entry, its outbox event (and the audit entry of a staff check-in) as one unit.

    The hot path of the kiosk (issue 9): everything that needs no lock happens before the unit
    of work (the number's parsing, the person's phone sealed to the hub), and the unit of work
    itself is a handful of SQLAlchemy Core statements, no ORM objects. It goes through
    kiosk.db.grouped_write: check-ins that arrive while another one's commit is on its way to
    the disk share the next commit (each in its own savepoint). A staff check-in, which also
    writes an audit entry through the ORM, has a write_transaction of its own.
    """
    now = now or utcnow()
    guest_phone = _guest_phone(phone) if member is None else None
    reason = _staff_reason(method, reason)
    member_id = member.id if member is not None else None
    # The person in the event, sealed to the hub (X25519) here, before the writer queue, with
    # the hub key this process last saw; the unit of work checks that key is still the one
    # stored and seals again inside only if not (just enrolled, the hub rolled its key, the
    # first check-in of the process) or if the member's number changed meanwhile. A member
    # found by the typed number has that very number.
    expected_phone = member.phone if member is not None else guest_phone or ""
    database = str(session.get_bind().engine.url)
    known_key = last_hub_keys.get(database)
    sealed = person_field_for_key(known_key, expected_phone) if known_key is not None else None
    staff_id = staff.id if staff is not None else None

    def unit(connection: Connection) -> CheckinResult:
        activity, occurrence = _open_activity(connection, activity_id, now, rules.zone)
        person = _attendee(connection, member_id, guest_phone)
        occurrence_key = _occurrence_key(connection, activity, occurrence, person, now, rules.repeat_minutes)
        _check_capacity(connection, activity, occurrence)
        points = activity.points if person.member is not None else 0
        checkin_id = _insert_checkin(connection, activity, occurrence, person, occurrence_key, method, points, rules, staff_id, reason, now)
        new_balance = None
        if person.member is not None:
            if points:
                _insert_points(connection, person.member.id, points, checkin_id)
            # Read here, where it is exact and costs one indexed sum, not another transaction.
            new_balance = int(_BALANCE.scalar(connection, {"member_id": person.member.id}) or 0)
        hub_key = _HUB_KEY.scalar(connection, {}) or ""
        person_sealed = sealed
        if person_sealed is None or hub_key != known_key or person.phone != expected_phone:
            person_sealed = person_field_for_key(hub_key, person.phone)
            last_hub_keys[database] = hub_key
        payload = _event_payload(checkin_id, activity, occurrence, method, points, person, person_sealed, rules)
        _INSERT_EVENT.insert(
            connection, {"event_id": str(uuid.uuid4()), "type": "checkin.created", "schema_version": 1, "occurred_at": now, "payload": payload}
        )
        return CheckinResult(
            checkin_id,
            activity.id,
            activity.title,
            person.member.name if person.member else None,
            person.guest_phone,
            points,
            member_id=person.member.id if person.member else None,
            balance=new_balance,
        )

    if staff is None:
        return grouped_write(session, unit)
    with write_transaction(session):
        result = unit(session.connection())
        record_audit(
            session,
            staff,
            "checkin.staff",
            target=f"activity:{result.activity_id}",
            detail=f"checkin={result.checkin_id} reason={reason}",
            remote_addr=remote_addr,
        )
    return result


# The check-in's statements, compiled once and run on the unit's DBAPI connection with
# SQLAlchemy's own type processing (kiosk.db.Prebuilt; Connection.execute on other databases).
_activity_t = cast(Table, Activity.__table__)
_member_t = cast(Table, Member.__table__)
_checkin_t = cast(Table, CheckIn.__table__)
_points_t = cast(Table, PointsEntry.__table__)
_sync_state_t = cast(Table, SyncState.__table__)

_SELECT_ACTIVITY = Prebuilt(
    select(
        _activity_t.c.id,
        _activity_t.c.title,
        _activity_t.c.category,
        _activity_t.c.status,
        _activity_t.c.policy,
        _activity_t.c.capacity,
        _activity_t.c.points,
        _activity_t.c.external_key,
        _activity_t.c.starts_at,
        _activity_t.c.ends_at,
        _activity_t.c.weekly,
        _activity_t.c.repeat_until,
        _activity_t.c.opens_minutes_before,
        _activity_t.c.closes_minutes_after,
    ).where(_activity_t.c.id == bindparam("id"))
)
_MEMBER_COLUMNS = (_member_t.c.id, _member_t.c.name, _member_t.c.phone, _member_t.c.age_band, _member_t.c.active)
_SELECT_MEMBER_BY_PHONE = Prebuilt(select(*_MEMBER_COLUMNS).where(_member_t.c.phone == bindparam("phone")))
_SELECT_MEMBER_BY_ID = Prebuilt(select(*_MEMBER_COLUMNS).where(_member_t.c.id == bindparam("id")))
_ACTIVE_CHECKIN = select(_checkin_t.c.id).where(
    _checkin_t.c.activity_id == bindparam("activity_id"),
    _checkin_t.c.person_key == bindparam("person_key"),
    _checkin_t.c.status == CheckinStatus.ACTIVE,
)
_SAME_OCCURRENCE = Prebuilt(_ACTIVE_CHECKIN.where(_checkin_t.c.occurrence_key == bindparam("occurrence_key")).limit(1))
_RECENT_CHECKIN = Prebuilt(_ACTIVE_CHECKIN.where(_checkin_t.c.created_at > bindparam("since", type_=UTCDateTime())).limit(1))
_TAKEN = Prebuilt(
    select(func.count())
    .select_from(_checkin_t)
    .where(
        _checkin_t.c.activity_id == bindparam("activity_id"),
        _checkin_t.c.session_date == bindparam("session_date", type_=Date()),
        _checkin_t.c.status == CheckinStatus.ACTIVE,
    )
)
_INSERT_CHECKIN = Prebuilt(
    insert(_checkin_t),
    [
        "activity_id",
        "member_id",
        "phone",
        "person_key",
        "occurrence_key",
        "session_date",
        "method",
        "status",
        "points",
        "device_id",
        "staff_id",
        "reason",
        "created_at",
    ],
)
# The ledger row award_points() writes for a check-in (reason, reference, no note, no actor;
# created_at its column default, as there).
_INSERT_POINTS = Prebuilt(insert(_points_t).values(reason=PointsReason.CHECKIN, note="", actor_id=None), ["member_id", "delta", "reference"])
_BALANCE = Prebuilt(select(func.coalesce(func.sum(_points_t.c.delta), 0)).where(_points_t.c.member_id == bindparam("member_id")))
_HUB_KEY = Prebuilt(select(_sync_state_t.c.hub_public_key).where(_sync_state_t.c.id == 1))
# The row record_event() writes (kiosk.sync.outbox), sent_at empty.
_INSERT_EVENT = Prebuilt(insert(cast(Table, OutboxEvent.__table__)), ["event_id", "type", "schema_version", "occurred_at", "payload"])


@dataclass(frozen=True)
class _OpenActivity:
    """The columns of an activity a check-in reads (a Core row, not an ORM object)."""

    id: int
    title: str
    category: ActivityCategory
    status: ActivityStatus
    policy: CheckinPolicy
    capacity: int | None
    points: int
    external_key: str | None
    starts_at: datetime
    ends_at: datetime
    weekly: bool
    repeat_until: date | None
    opens_minutes_before: int
    closes_minutes_after: int


@dataclass(frozen=True)
class _Person:
    """A member as a check-in reads them."""

    id: int
    name: str
    phone: str
    age_band: AgeBand
    active: bool


@dataclass(frozen=True)
class _Attendee:
    """Who checks in: a member (earns points) or a guest known by a phone number."""

    member: _Person | None
    guest_phone: str | None  # the guest's number; None for a member

    @property
    def key(self) -> str:
        return f"m:{self.member.id}" if self.member else f"p:{self.guest_phone}"

    @property
    def phone(self) -> str:
        return self.member.phone if self.member else self.guest_phone or ""


def _guest_phone(raw: str | None) -> str:
    try:
        return parse_phone(raw)
    except PhoneError as error:
        raise CheckinError(error.code, error.message, field="phone") from None


def _staff_reason(method: CheckinMethod, reason: str) -> str:
    if method != CheckinMethod.STAFF:
        return reason
    reason = " ".join(reason.split())[:200]
    if not reason:
        raise CheckinError("reason_required", _l("Please give the reason for a check-in by staff."), field="reason")
    return reason


def _open_activity(connection: Connection, activity_id: int, now: datetime, zone: ZoneInfo) -> tuple[_OpenActivity, Occurrence]:
    row = _SELECT_ACTIVITY.first(connection, {"id": activity_id})
    if row is None:
        raise CheckinError("unknown_activity", _l("This activity does not exist."), status=404)
    activity = _OpenActivity(*row)
    if activity.status != ActivityStatus.ACTIVE:
        raise CheckinError("activity_cancelled", _l("This activity has been cancelled."), status=409)
    return activity, current_occurrence(activity, now, zone)


def _attendee(connection: Connection, member_id: int | None, guest_phone: str | None) -> _Attendee:
    """A phone that belongs to a member checks that member in; any other phone is a guest."""
    row = _SELECT_MEMBER_BY_PHONE.first(connection, {"phone": guest_phone}) if member_id is None else _SELECT_MEMBER_BY_ID.first(connection, {"id": member_id})
    found = _Person(*row) if row is not None else None
    if found is not None and not found.active:
        raise CheckinError("member_revoked", _l("This membership is not active. Please ask the staff at the desk."), status=403)
    return _Attendee(found, None if found else guest_phone)


def _occurrence_key(connection: Connection, activity: _OpenActivity, occurrence: Occurrence, person: _Attendee, now: datetime, repeat_minutes: int) -> str:
    """The key that makes a second check-in a duplicate (per the activity's policy), refusing
    one that is already there."""
    who = {"activity_id": activity.id, "person_key": person.key}
    if activity.policy == CheckinPolicy.ONCE:
        occurrence_key = "all"
    elif activity.policy == CheckinPolicy.DAILY:
        occurrence_key = occurrence.session_date.isoformat()
    else:
        occurrence_key = f"r:{uuid.uuid4().hex}"
        if _RECENT_CHECKIN.first(connection, {**who, "since": now - timedelta(minutes=repeat_minutes)}) is not None:
            raise _already()
    if _SAME_OCCURRENCE.first(connection, {**who, "occurrence_key": occurrence_key}) is not None:
        raise _already()
    return occurrence_key


def _check_capacity(connection: Connection, activity: _OpenActivity, occurrence: Occurrence) -> None:
    if activity.capacity is None:
        return
    taken = _TAKEN.scalar(connection, {"activity_id": activity.id, "session_date": occurrence.session_date})
    if (taken or 0) >= activity.capacity:
        raise CheckinError("full", _l("Sorry, this activity is full."), status=409)


def _insert_checkin(
    connection: Connection,
    activity: _OpenActivity,
    occurrence: Occurrence,
    person: _Attendee,
    occurrence_key: str,
    method: CheckinMethod,
    points: int,
    rules: CheckinRules,
    staff_id: int | None,
    reason: str,
    now: datetime,
) -> int:
    values = {
        "activity_id": activity.id,
        "member_id": person.member.id if person.member else None,
        "phone": person.guest_phone,
        "person_key": person.key,
        "occurrence_key": occurrence_key,
        "session_date": occurrence.session_date,
        "method": method,
        "status": CheckinStatus.ACTIVE,
        "points": points,
        "device_id": rules.device_id,
        "staff_id": staff_id,
        "reason": reason,
        "created_at": now,
    }
    try:
        return _INSERT_CHECKIN.insert(connection, values)
    except IntegrityError:
        # Another writer got there first (the database is the last word on duplicates). Nothing
        # else of this unit was written yet; its transaction or savepoint is rolled back.
        raise _already() from None


def _insert_points(connection: Connection, member_id: int, points: int, checkin_id: int) -> None:
    """The check-in's ledger entry, as award_points() would add it (kiosk.points.services)."""
    if not 0 < points <= MAX_DELTA:
        raise PointsError("invalid_delta", _l("Points must be a whole number between -%(n)d and %(n)d, not zero.", n=MAX_DELTA), field="delta")
    _INSERT_POINTS.insert(connection, {"member_id": member_id, "delta": points, "reference": f"checkin:{checkin_id}"})


def staff_check_in(
    session: Session, activity_id: int, person: str | None, *, reason: str, rules: CheckinRules, staff: StaffUser, remote_addr: str = ""
) -> CheckinResult:
    """A check-in typed at the desk: staff enter a mobile number, or the member number (up to
    six digits) printed on the card, in one field ("person")."""
    text = (person or "").strip()
    member = None
    if text.isascii() and text.isdigit() and len(text) <= 6:
        member = session.get(Member, int(text))
        if member is None:
            raise CheckinError("unknown_member", _l("No member has this number."), field="person")
    try:
        return check_in(
            session,
            activity_id,
            rules=rules,
            method=CheckinMethod.STAFF,
            member=member,
            phone=None if member else text,
            staff=staff,
            reason=reason,
            remote_addr=remote_addr,
        )
    except CheckinError as error:
        if error.field == "phone":
            error.field = "person"  # the form has one field for phone or member number
        raise


def _event_payload(
    checkin_id: int,
    activity: _OpenActivity,
    occurrence: Occurrence,
    method: CheckinMethod,
    points: int,
    person: _Attendee,
    sealed: dict[str, str],
    rules: CheckinRules,
) -> dict:
    """What the district learns: no name; the phone sealed to the hub (which keeps only its own
    pseudonym of it, see kiosk.sync.outbox.person_field) and an age band."""
    return {
        "checkin_id": checkin_id,
        "activity_id": activity.id,
        "activity_key": activity.external_key,
        "category": activity.category.value,
        "session_date": occurrence.session_date.isoformat(),
        "method": method.value,
        **sealed,
        "member": person.member is not None,
        "age_band": person.member.age_band.value if person.member else None,
        "points": points,
        "device": rules.device_id,
    }


def undo_checkin(session: Session, checkin_id, *, staff: StaffUser, reason: str | None, rules: CheckinRules, remote_addr: str = "") -> CheckIn:
    reason = " ".join((reason or "").split())[:200]
    if not reason:
        raise CheckinError("reason_required", _l("Please give the reason for undoing this check-in."), field="reason")
    with write_transaction(session):
        checkin = session.get(CheckIn, int(checkin_id)) if str(checkin_id).isdigit() else None
        if checkin is None:
            raise CheckinError("unknown_checkin", _l("This check-in does not exist."), status=404)
        if checkin.status != CheckinStatus.ACTIVE:
            raise CheckinError("already_undone", _l("This check-in was already undone."), status=409)
        checkin.status = CheckinStatus.UNDONE
        checkin.occurrence_key = f"{checkin.occurrence_key}~undone{checkin.id}"[:48]
        checkin.reason = reason
        if checkin.points and checkin.member_id:
            award_points(session, checkin.member_id, -checkin.points, PointsReason.CHECKIN_UNDONE, reference=f"checkin:{checkin.id}", note=reason, actor=staff)
        record_event(
            session, "checkin.undone", {"checkin_id": checkin.id, "activity_id": checkin.activity_id, "points": -checkin.points, "device": rules.device_id}
        )
        record_audit(session, staff, "checkin.undo", target=f"checkin:{checkin.id}", detail=reason, remote_addr=remote_addr)
    return checkin


# ---- live figures, lists, statistics ----


def checkin_activity_id(session: Session, checkin_id: int) -> int | None:
    return session.scalar(select(CheckIn.activity_id).where(CheckIn.id == checkin_id))


def export_attendance(session: Session, activity_id: int, *, kind: str, full_phones: bool, actor: StaffUser | None, remote_addr: str = "") -> list[CheckIn]:
    """The activity's attendance list for a download; the export is audited first (who, which
    format, whether phones were shown in full)."""
    with write_transaction(session):
        record_audit(
            session,
            actor,
            "checkin.export",
            target=f"activity:{activity_id}",
            detail=f"{kind} phones={'full' if full_phones else 'masked'}",
            remote_addr=remote_addr,
        )
    return attendance(session, activity_id)


def checked_in_count(session: Session, activity_id: int, session_date: date | None = None) -> int:
    query = select(func.count()).select_from(CheckIn).where(CheckIn.activity_id == activity_id, CheckIn.status == CheckinStatus.ACTIVE)
    if session_date is not None:
        query = query.where(CheckIn.session_date == session_date)
    return int(session.scalar(query) or 0)


def attended_count(session: Session, member_id: int) -> int:
    """How many check-ins a member has that still stand (those staff undid do not count)."""
    query = select(func.count()).select_from(CheckIn).where(CheckIn.member_id == member_id, CheckIn.status == CheckinStatus.ACTIVE)
    return int(session.scalar(query) or 0)


def attendance(session: Session, activity_id: int, *, limit: int | None = None) -> list[CheckIn]:
    """Newest first; ``limit`` in the query (the staff page shows 200: loading a busy
    activity's every check-in to keep 200 grew that page's time over a soak)."""
    query = select(CheckIn).where(CheckIn.activity_id == activity_id).order_by(CheckIn.id.desc())
    return list(session.scalars(query if limit is None else query.limit(limit)))


@dataclass(frozen=True)
class MonthFigures:
    month: str
    category: ActivityCategory
    attendances: int
    people: int


def statistics(session: Session, months: int = 12, now: datetime | None = None, zone: ZoneInfo | None = None) -> list[MonthFigures]:
    """Attendances and distinct people per category and month (session dates, local).

    The window starts on the 1st of the month ``months - 1`` months ago in the centre's time
    zone (at 07:00 on the 1st in Beijing it is still last month in UTC)."""
    now = now or utcnow()
    start = (now.astimezone(zone) if zone else now).date().replace(day=1)
    for _ in range(months - 1):
        start = (start - timedelta(days=1)).replace(day=1)
    rows = session.execute(
        select(CheckIn.session_date, Activity.category, CheckIn.person_key)
        .join(Activity, Activity.id == CheckIn.activity_id)
        .where(CheckIn.status == CheckinStatus.ACTIVE, CheckIn.session_date >= start)
    )
    counts: dict[tuple[str, ActivityCategory], int] = defaultdict(int)
    people: dict[tuple[str, ActivityCategory], set[str]] = defaultdict(set)
    for session_date, category, person_key in rows:
        key = (session_date.strftime("%Y-%m"), category)
        counts[key] += 1
        people[key].add(person_key)
    return [MonthFigures(month, category, counts[(month, category)], len(people[(month, category)])) for month, category in sorted(counts)]


# ---- kiosk lock ----


def current_lock(session: Session, device_id: str) -> KioskLock | None:
    return session.scalar(select(KioskLock).where(KioskLock.device_id == device_id))


def lock_kiosk(session: Session, device_id: str, activity: Activity, *, staff: StaffUser, remote_addr: str = "") -> KioskLock:
    with write_transaction(session):
        lock = current_lock(session, device_id)
        if lock is None:
            lock = KioskLock(device_id=device_id, activity_id=activity.id)
            session.add(lock)
        lock.activity_id, lock.locked_by_id, lock.locked_at = activity.id, staff.id, utcnow()
        record_audit(session, staff, "kiosk.lock", target=f"activity:{activity.id}", detail=device_id, remote_addr=remote_addr)
    return lock


def unlock_kiosk(session: Session, device_id: str, *, staff: StaffUser, remote_addr: str = "") -> None:
    with write_transaction(session):
        lock = current_lock(session, device_id)
        if lock is not None:
            session.delete(lock)
            record_audit(session, staff, "kiosk.unlock", detail=device_id, remote_addr=remote_addr)
