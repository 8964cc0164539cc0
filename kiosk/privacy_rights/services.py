"""What the kiosk holds about one person, erasing it, and the retention period (PIPL).

A person is found by their mobile number: as a member (``member.phone``) and as a guest, whose
phone sits on their own check-ins, bookings and waiting-list entries (``person_key`` ``p:<phone>``).

- ``export_person`` gathers every row about them (member record, check-ins, points ledger,
  redemptions, bookings, waiting list, loans, audit entries about them, what waits in the outbox)
  as plain data; ``write_export`` writes it as a readable Chinese HTML page and as JSON.
- ``erase_person`` removes what identifies them (name, phone, community, the phone on guest
  rows, the phone in outbox payloads not yet sealed) and keeps the rows, so the centre's
  statistics stay true: the member row stays as an anonymous, deactivated record whose old
  cards no longer work. One ``privacy.erased`` outbox event tells the hub to forget the
  pseudonym (kiosk.hub.services.forget_erased_people). Refused while the person has a book out,
  a reward waiting at the desk or an open booking: those are finished (or cancelled) first.
- ``purge_expired`` (the retention period, ``PRIVACY_RETENTION_DAYS``): check-ins, bookings,
  waiting-list entries and returned loans older than it lose their link to the person.

Every write is one ``write_transaction`` with its audit entry; no audit entry names the phone.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, func, literal, or_, select, update
from sqlalchemy.orm import Session

from kiosk.booking.models import OPEN_STATUSES, BlockLift, Booking, WaitlistEntry, WaitlistStatus
from kiosk.catalogue.models import Loan
from kiosk.checkin.models import CheckIn
from kiosk.db import utcnow, write_transaction
from kiosk.errors import KioskError
from kiosk.i18n import _l
from kiosk.identify.services import parse_phone
from kiosk.members.models import Member
from kiosk.points.models import PointsEntry, Redemption, RedemptionStatus
from kiosk.privacy import mask_phone
from kiosk.staff.models import AuditEntry
from kiosk.staff.services import record_audit
from kiosk.sync.models import OutboxEvent
from kiosk.sync.outbox import UNSEALED_FIELD, hub_public_key, record_event

ERASED_NAME = "已删除"
ERASED_EVENT = "privacy.erased"
# An erased member keeps a row (the points ledger and statistics point at it) with a phone that
# can never be a mobile number and stays unique: "E" and the member id.
ERASED_PHONE_PREFIX = "E"
REDACTED = "***"


class PrivacyError(KioskError):
    status = 409


@dataclass
class Person:
    phone: str
    member: Member | None
    guest_key: str  # the person_key of the phone's guest rows

    @property
    def member_key(self) -> str | None:
        return f"m:{self.member.id}" if self.member else None

    @property
    def keys(self) -> list[str]:
        return [key for key in (self.member_key, self.guest_key) if key]

    @property
    def target(self) -> str:
        """What an audit entry names: the member, or a masked guest."""
        return f"member:{self.member.id}" if self.member else f"guest:{mask_phone(self.phone)}"


def is_erased(member: Member) -> bool:
    return member.phone.startswith(ERASED_PHONE_PREFIX)


def find_person(session: Session, raw_phone: str) -> Person:
    """The member with this number (if any) and the number's guest rows. Raises PrivacyError
    (404) when the kiosk holds nothing under this number."""
    phone = parse_phone(raw_phone)
    member = session.scalar(select(Member).where(Member.phone == phone))
    person = Person(phone=phone, member=member, guest_key=f"p:{phone}")
    if member is None and not _has_guest_rows(session, person):
        raise PrivacyError("person_unknown", _l("This kiosk holds nothing under this mobile number."), status=404, field="phone")
    return person


def _has_guest_rows(session: Session, person: Person) -> bool:
    for model in (CheckIn, Booking, WaitlistEntry):
        if session.scalar(select(model.id).where(or_(model.phone == person.phone, model.person_key == person.guest_key)).limit(1)) is not None:
            return True
    return False


def _rows_about(model: Any, person: Person) -> Any:
    """Rows of a check-in/booking/waitlist table that belong to the person."""
    clauses = [model.phone == person.phone, model.person_key == person.guest_key]
    if person.member is not None:
        clauses.append(model.member_id == person.member.id)
    return or_(*clauses)


def _when(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else ""


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _audit_about(person: Person) -> Any:
    clauses = [AuditEntry.target == person.target, AuditEntry.detail.contains(person.phone), AuditEntry.target.contains(person.phone)]
    return or_(*clauses)


def _outbox_about(session: Session, person: Person) -> list[OutboxEvent]:
    """Outbox events that still carry the phone in plain text (recorded before enrolment) or
    name the member by id. Sealed phones cannot be matched here: only the hub can open them."""
    clauses = [OutboxEvent.payload[UNSEALED_FIELD].as_string() == person.phone]
    if person.member is not None:
        clauses.append(OutboxEvent.payload["member_id"].as_integer() == person.member.id)
    return list(session.scalars(select(OutboxEvent).where(or_(*clauses)).order_by(OutboxEvent.id)))


def export_person(session: Session, raw_phone: str, *, actor=None, zone: ZoneInfo, remote_addr: str = "") -> dict[str, Any]:
    """Everything held about the person as plain data (strings and numbers). The request is
    audited first (in its own unit of work), then read."""
    from kiosk.booking.forms import STATUS_LABELS as BOOKING_STATUS
    from kiosk.checkin.forms import CHECKIN_STATUS_LABELS, METHOD_LABELS
    from kiosk.members.forms import AGE_BAND_LABELS
    from kiosk.points.forms import REASON_LABELS, REDEMPTION_STATUS_LABELS

    person = find_person(session, raw_phone)
    with write_transaction(session):
        record_audit(session, actor, "privacy.export", target=person.target, remote_addr=remote_addr)
    member = person.member
    data: dict[str, Any] = {"phone": person.phone, "exported_at": _when(utcnow(), zone), "member": None}
    if member is not None:
        data["member"] = {
            "member_number": member.member_number,
            "name": member.name,
            "phone": member.phone,
            "community": member.community,
            "age_band": str(AGE_BAND_LABELS.get(member.age_band, member.age_band.value)),
            "consent_at": _when(member.consent_at, zone),
            "consent_version": member.consent_version,
            "active": member.active,
            "card_serial": member.card_serial,
            "registered_at": _when(member.created_at, zone),
            "updated_at": _when(member.updated_at, zone),
            "erased": is_erased(member),
        }
    checkins = session.scalars(select(CheckIn).where(_rows_about(CheckIn, person)).order_by(CheckIn.created_at)).all()
    data["checkins"] = [
        {
            "at": _when(c.created_at, zone),
            "activity": c.activity.title,
            "session_date": _day(c.session_date),
            "method": str(METHOD_LABELS.get(c.method, c.method.value)),
            "status": str(CHECKIN_STATUS_LABELS.get(c.status, c.status.value)),
            "points": c.points,
            "reason": c.reason,
        }
        for c in checkins
    ]
    if member is not None:
        entries = session.scalars(select(PointsEntry).where(PointsEntry.member_id == member.id).order_by(PointsEntry.id)).all()
        redemptions = session.scalars(select(Redemption).where(Redemption.member_id == member.id).order_by(Redemption.id)).all()
        loans = session.scalars(select(Loan).where(Loan.member_id == member.id).order_by(Loan.id)).all()
    else:
        entries, redemptions, loans = [], [], []
    data["points"] = [
        {"at": _when(e.created_at, zone), "delta": e.delta, "reason": str(REASON_LABELS.get(e.reason, e.reason.value)), "note": e.note} for e in entries
    ]
    data["points_balance"] = sum(e.delta for e in entries)
    data["redemptions"] = [
        {
            "at": _when(r.created_at, zone),
            "reward": r.reward.name,
            "cost": r.cost,
            "status": str(REDEMPTION_STATUS_LABELS.get(r.status, r.status.value)),
            "pickup_code": r.pickup_code,
            "closed_at": _when(r.closed_at, zone),
            "note": r.note,
        }
        for r in redemptions
    ]
    bookings = session.scalars(select(Booking).where(_rows_about(Booking, person)).order_by(Booking.id)).all()
    data["bookings"] = [
        {
            "service": b.service.name,
            "day": _day(b.day),
            "ticket": b.ticket,
            "time": _when(b.queue_at, zone),
            "status": str(BOOKING_STATUS.get(b.status, b.status.value)),
            "booked_at": _when(b.created_at, zone),
            "note": b.note,
        }
        for b in bookings
    ]
    waiting = session.scalars(select(WaitlistEntry).where(_rows_about(WaitlistEntry, person)).order_by(WaitlistEntry.id)).all()
    data["waitlist"] = [
        {"service": w.service.name, "slot": _when(w.starts_at, zone), "status": w.status.value, "at": _when(w.created_at, zone)} for w in waiting
    ]
    data["loans"] = [
        {
            "title": loan.copy.book.title,
            "barcode": loan.copy.barcode,
            "borrowed_at": _when(loan.borrowed_at, zone),
            "due_date": _day(loan.due_date),
            "returned_at": _when(loan.returned_at, zone),
        }
        for loan in loans
    ]
    audit = session.scalars(select(AuditEntry).where(_audit_about(person)).order_by(AuditEntry.id)).all()
    from kiosk.staff.describe import ACTION_LABELS

    # The action in words for the reader (登记会员, 积分更正), its code kept beside it.
    data["audit"] = [
        {"at": _when(a.at, zone), "who": a.actor_name, "action": str(ACTION_LABELS.get(a.action, a.action)), "action_code": a.action, "detail": a.detail}
        for a in audit
    ]
    outbox = _outbox_about(session, person)
    data["district"] = {
        "events_naming_you": len(outbox),
        "events_waiting": sum(1 for e in outbox if e.sent_at is None),
    }
    session.commit()  # end the read
    return data


# ---- the readable file ----

SECTIONS: tuple[tuple[str, Any, tuple[tuple[str, Any], ...]], ...] = (
    (
        "checkins",
        _l("Activity check-ins"),
        (("at", _l("Time")), ("activity", _l("Activity")), ("method", _l("How")), ("status", _l("Status")), ("points", _l("Points")), ("reason", _l("Note"))),
    ),
    ("points", _l("Points ledger"), (("at", _l("Time")), ("delta", _l("Points")), ("reason", _l("Reason")), ("note", _l("Note")))),
    (
        "redemptions",
        _l("Rewards redeemed"),
        (("at", _l("Time")), ("reward", _l("Reward")), ("cost", _l("Points")), ("status", _l("Status")), ("pickup_code", _l("Pickup code"))),
    ),
    (
        "bookings",
        _l("Service bookings"),
        (("service", _l("Service")), ("time", _l("Time")), ("ticket", _l("Ticket")), ("status", _l("Status")), ("booked_at", _l("Booked at"))),
    ),
    ("waitlist", _l("Waiting lists"), (("service", _l("Service")), ("slot", _l("Time")), ("status", _l("Status")), ("at", _l("Joined at")))),
    (
        "loans",
        _l("Books borrowed"),
        (("title", _l("Title")), ("barcode", _l("Copy")), ("borrowed_at", _l("Borrowed")), ("due_date", _l("Due")), ("returned_at", _l("Returned"))),
    ),
    ("audit", _l("Staff actions about you (audit log)"), (("at", _l("Time")), ("who", _l("By")), ("action", _l("Action")), ("detail", _l("Detail")))),
)

MEMBER_FIELDS: tuple[tuple[str, Any], ...] = (
    ("member_number", _l("Member number")),
    ("name", _l("Name")),
    ("phone", _l("Mobile number")),
    ("community", _l("Community")),
    ("age_band", _l("Age band")),
    ("registered_at", _l("Registered")),
    ("consent_at", _l("Privacy consent given")),
    ("consent_version", _l("Privacy notice version")),
    ("card_serial", _l("Card number (re-issues)")),
)


def render_html(data: Mapping[str, Any], centre_name: str) -> str:
    """A self-contained Chinese page (no scripts, no links out) a person can open anywhere."""

    def t(text: Any) -> str:
        return html.escape(str(text))

    title = _l("Your personal data")
    heading = _l("Your personal data held by %(centre)s", centre=centre_name)
    intro = _l("Exported at %(when)s for mobile number %(phone)s.", when=data["exported_at"], phone=data["phone"])
    parts = [
        "<!doctype html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        "<title>" + t(title) + " · " + t(centre_name) + "</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.6}"
        "table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}th,td{border:1px solid #999;padding:.3rem .5rem;text-align:left}"
        "th{background:#eee}</style></head><body>",
        "<h1>" + t(heading) + "</h1>",
        "<p>" + t(intro) + "</p>",
        "<h2>" + t(_l("Member record")) + "</h2>",
    ]
    member = data.get("member")
    if member:
        parts.append("<table>")
        for key, label in MEMBER_FIELDS:
            parts.append("<tr><th>" + t(label) + "</th><td>" + t(member.get(key, "")) + "</td></tr>")
        parts.append("<tr><th>" + t(_l("Points balance")) + "</th><td>" + t(data.get("points_balance", 0)) + "</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>" + t(_l("You are not a registered member; the records below were made with your mobile number.")) + "</p>")
    for key, section_title, columns in SECTIONS:
        rows = data.get(key) or []
        parts.append("<h2>" + t(section_title) + f" ({len(rows)})</h2>")
        if not rows:
            parts.append("<p>" + t(_l("None.")) + "</p>")
            continue
        parts.append("<table><tr>" + "".join("<th>" + t(label) + "</th>" for _key, label in columns) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join("<td>" + t(row.get(col, "")) + "</td>" for col, _label in columns) + "</tr>")
        parts.append("</table>")
    district = data.get("district") or {}
    shared = _l(
        "The district hub receives counts and, for each record, your mobile number only sealed so that it becomes a code the district "
        "cannot turn back into your number; never your name. Records about you in this kiosk's outbox: %(events)d (%(waiting)d not sent yet).",
        events=district.get("events_naming_you", 0),
        waiting=district.get("events_waiting", 0),
    )
    parts.append("<h2>" + t(_l("What the district receives")) + "</h2>")
    parts.append("<p>" + t(shared) + "</p>")
    parts.append("<p>" + t(_l("To have these records erased, ask the staff at the desk.")) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_export(data: Mapping[str, Any], directory: Path, centre_name: str, *, now: datetime | None = None) -> tuple[Path, Path]:
    """Write ``privacy-export-<stamp>.html`` and ``.json`` (mode 0600: they hold the person's
    data) and return both paths. The file names carry no phone."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or utcnow()).strftime("%Y%m%d-%H%M%S")
    suffix = data["member"]["member_number"] if data.get("member") else "guest"
    base = directory / f"privacy-export-{stamp}-{suffix}"
    html_path, json_path = base.with_suffix(".html"), base.with_suffix(".json")
    for path, text in ((html_path, render_html(data, centre_name)), (json_path, json.dumps(data, ensure_ascii=False, indent=2))):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as fh:
            fh.write(text)
    return html_path, json_path


# ---- erasure ----


@dataclass
class ErasureResult:
    target: str
    counts: dict[str, int] = field(default_factory=dict)


def _scrub(text: str, words: list[str]) -> str:
    for word in words:
        if word and word in text:
            text = text.replace(word, REDACTED)
    return text


def open_business(session: Session, person: Person, today: date) -> list[str]:
    """What must be finished before the person can be erased (reasons, for the refusal)."""
    reasons = []
    if person.member is not None:
        member_id = person.member.id
        if session.scalar(select(func.count()).select_from(Loan).where(Loan.member_id == member_id, Loan.returned_at.is_(None))):
            reasons.append(str(_l("a book is still on loan")))
        if session.scalar(select(func.count()).select_from(Redemption).where(Redemption.member_id == member_id, Redemption.status == RedemptionStatus.PENDING)):
            reasons.append(str(_l("a reward is waiting at the desk")))
    if session.scalar(select(func.count()).select_from(Booking).where(_rows_about(Booking, person), Booking.status.in_(OPEN_STATUSES), Booking.day >= today)):
        reasons.append(str(_l("a booking is still open")))
    return reasons


def erase_person(session: Session, raw_phone: str, *, actor=None, zone: ZoneInfo, remote_addr: str = "", now: datetime | None = None) -> ErasureResult:
    """Erase what identifies the person; keep the rows as anonymous statistics (module doc)."""
    now = now or utcnow()
    with write_transaction(session):
        person = find_person(session, raw_phone)
        member = person.member
        if member is not None and is_erased(member):
            raise PrivacyError("already_erased", _l("This person has already been erased."))
        blocking = open_business(session, person, now.astimezone(zone).date())
        if blocking:
            raise PrivacyError("open_business", _l("Finish these first, then erase: %(reasons)s.", reasons="；".join(blocking)), field="phone")
        words = [person.phone, mask_phone(person.phone)]
        if member is not None and len(member.name.strip()) >= 2:
            words.insert(0, member.name.strip())
        result = ErasureResult(target=person.target)
        counts = result.counts
        # Guest rows: the phone goes, and the person_key made from it becomes the row's own.
        for model, prefix in ((CheckIn, "c"), (Booking, "b"), (WaitlistEntry, "w")):
            rows = session.scalars(select(model).where(_rows_about(model, person))).all()
            for row in rows:
                row.phone = None  # type: ignore[attr-defined]
                if row.person_key == person.guest_key:  # type: ignore[attr-defined]
                    row.person_key = f"x:{prefix}{row.id}"  # type: ignore[attr-defined]
                for text_field in ("reason", "note"):
                    if hasattr(row, text_field):
                        setattr(row, text_field, _scrub(getattr(row, text_field), words))
            counts[model.__tablename__] = len(rows)
        lifts = session.scalars(select(BlockLift).where(BlockLift.person_key.in_(person.keys))).all()
        for lift in lifts:
            lift.person_key = f"x:l{lift.id}"
            lift.reason = _scrub(lift.reason, words)
        if member is not None:
            for entry in session.scalars(select(PointsEntry).where(PointsEntry.member_id == member.id, PointsEntry.note != "")):
                entry.note = _scrub(entry.note, words)
            for redemption in session.scalars(select(Redemption).where(Redemption.member_id == member.id, Redemption.note != "")):
                redemption.note = _scrub(redemption.note, words)
            member.name = ERASED_NAME
            member.phone = f"{ERASED_PHONE_PREFIX}{member.id:010d}"
            member.community = ""
            member.active = False
            member.card_serial += 1  # every printed card stops working
            counts["member"] = 1
        for audit in session.scalars(select(AuditEntry).where(_audit_about(person))):
            audit.detail = _scrub(audit.detail, words)
            audit.target = _scrub(audit.target, words)
        # Payloads recorded before enrolment still hold the phone in plain text: it goes (the
        # event is then sent without a person). Sealed phones are the hub's to forget.
        scrubbed = 0
        for event in _outbox_about(session, person):
            if event.payload.get(UNSEALED_FIELD) == person.phone:
                event.payload = {k: v for k, v in event.payload.items() if k != UNSEALED_FIELD}
                scrubbed += 1
        counts["outbox"] = scrubbed
        # The hub can only forget a pseudonym it can compute: the phone sealed to its key. Not
        # enrolled yet = the hub never saw this person, so the event names nobody.
        payload: dict[str, Any] = {"member": member is not None}
        if hub_public_key(session):
            from kiosk.sync.outbox import person_field

            payload.update(person_field(session, person.phone))
        assert UNSEALED_FIELD not in payload
        record_event(session, "privacy.erased", payload, occurred_at=now)
        record_audit(
            session,
            actor,
            "privacy.erase",
            target=result.target if member is not None else "guest",
            detail=" ".join(f"{k}={v}" for k, v in sorted(counts.items())),
            remote_addr=remote_addr,
        )
    # Committed: no kiosk process keeps the number's sealed value any longer (this one at once,
    # the server's at its next seal, through the marker it watches).
    _forget_sealed(person.phone)
    return result


def _forget_sealed(phone: str) -> None:
    from flask import current_app, has_app_context

    from kiosk.sync import erasure_marker, protocol

    protocol.note_erasure(erasure_marker(current_app) if has_app_context() else None, phone)


# ---- retention ----


@dataclass
class PurgeResult:
    cutoff: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def purge_expired(session: Session, retention_days: int, *, zone: ZoneInfo, now: datetime | None = None, actor=None) -> PurgeResult:
    """Check-ins, closed bookings, waiting-list entries and returned loans older than the
    retention period lose their link to the person (member id, phone, person key). The rows
    stay for the statistics. The points ledger keeps its member (it is the balance)."""
    if retention_days < 1:
        raise PrivacyError("bad_retention", _l("The retention period must be at least one day."), status=400)
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)
    cutoff_day = cutoff.astimezone(zone).date()
    result = PurgeResult(cutoff=cutoff)
    linked = or_(CheckIn.member_id.is_not(None), CheckIn.phone.is_not(None), ~CheckIn.person_key.startswith("x:"))
    with write_transaction(session):
        counts = result.counts
        counts["check_in"] = _unlink(session, CheckIn, "c", (CheckIn.created_at < cutoff, linked))
        booking_linked = or_(Booking.member_id.is_not(None), Booking.phone.is_not(None), ~Booking.person_key.startswith("x:"))
        counts["booking"] = _unlink(session, Booking, "b", (Booking.day < cutoff_day, Booking.status.not_in(OPEN_STATUSES), booking_linked))
        waiting_linked = or_(WaitlistEntry.member_id.is_not(None), WaitlistEntry.phone.is_not(None), ~WaitlistEntry.person_key.startswith("x:"))
        counts["booking_waitlist"] = _unlink(
            session, WaitlistEntry, "w", (WaitlistEntry.starts_at < cutoff, WaitlistEntry.status != WaitlistStatus.WAITING, waiting_linked)
        )
        counts["book_loan"] = int(
            session.execute(
                update(Loan).where(Loan.returned_at.is_not(None), Loan.returned_at < cutoff, Loan.member_id.is_not(None)).values(member_id=None)
            ).rowcount  # type: ignore[attr-defined]
            or 0
        )
        record_audit(
            session,
            actor,
            "privacy.purge",
            detail=f"retention_days={retention_days} cutoff={cutoff_day.isoformat()} " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())),
        )
    return result


def _unlink(session: Session, model: Any, prefix: str, conditions: tuple) -> int:
    """member_id and phone to NULL, person_key to the row's own ``x:<prefix><id>``: one UPDATE."""
    statement = (
        update(model)
        .where(*conditions)
        .values(member_id=None, phone=None, person_key=literal(f"x:{prefix}") + cast(model.id, String))
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]
