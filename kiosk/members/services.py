"""Members: registration at the desk, search, member QR cards."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiosk.db import utcnow
from kiosk.errors import KioskError
from kiosk.i18n import _l
from kiosk.identify.services import PhoneError, parse_phone
from kiosk.members.models import AgeBand, Member
from kiosk.signing import TokenSigner
from kiosk.staff.models import StaffUser
from kiosk.staff.services import record_audit
from kiosk.sync.outbox import person_field, record_event
from kiosk.validation import clean_text

MAX_NAME_LENGTH = 30
MAX_COMMUNITY_LENGTH = 60
CARD_PREFIX = "M1"
CARD_PURPOSE = "member-card"


class MemberError(KioskError):
    pass


class CardError(KioskError):
    pass


@dataclass(frozen=True)
class MemberFields:
    name: str
    phone: str
    community: str
    age_band: AgeBand


def _clean_text(raw: str | None, limit: int, field: str, *, required: bool) -> str:
    return clean_text(raw, limit, field, error=MemberError, required=required)


def validate_member(name: str | None, phone: str | None, community: str | None, age_band: str | None) -> MemberFields:
    clean_name = _clean_text(name, MAX_NAME_LENGTH, "name", required=True)
    if any(ch.isdigit() for ch in clean_name):
        raise MemberError("name_invalid", _l("A name cannot contain digits."), field="name")
    try:
        clean_phone = parse_phone(phone)
    except PhoneError as error:
        raise MemberError(error.code, error.message, field="phone") from None
    try:
        band = AgeBand(age_band or "")
    except ValueError:
        raise MemberError("age_band_invalid", _l("Please choose an age band."), field="age_band") from None
    return MemberFields(clean_name, clean_phone, _clean_text(community, MAX_COMMUNITY_LENGTH, "community", required=False), band)


def _phone_taken(session: Session, phone: str, except_id: int | None = None) -> bool:
    query = select(func.count()).select_from(Member).where(Member.phone == phone)
    if except_id is not None:
        query = query.where(Member.id != except_id)
    return bool(session.scalar(query))


def _duplicate_phone() -> MemberError:
    return MemberError("duplicate_phone", _l("A member with this mobile number is already registered."), status=409, field="phone")


def register_member(
    session: Session,
    *,
    name: str | None,
    phone: str | None,
    community: str | None,
    age_band: str | None,
    consent: bool,
    consent_version: str,
    actor: StaffUser | None,
    remote_addr: str = "",
) -> Member:
    fields = validate_member(name, phone, community, age_band)
    if not consent:
        raise MemberError("consent_required", _l("The member must agree to the privacy notice first."), field="consent")
    if _phone_taken(session, fields.phone):
        raise _duplicate_phone()
    member = Member(
        name=fields.name,
        phone=fields.phone,
        community=fields.community,
        age_band=fields.age_band,
        consent_at=utcnow(),
        consent_version=consent_version,
    )
    session.add(member)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # Two desks registering the same phone at once: the unique index decides.
        raise _duplicate_phone() from None
    record_audit(session, actor, "member.register", target=f"member:{member.id}", remote_addr=remote_addr)
    # De-identified for the district: the phone sealed to the hub, the age band, no name.
    record_event(session, "member.registered", {"member_id": member.id, "age_band": member.age_band.value, **person_field(session, member.phone)})
    return member


def update_member(
    session: Session,
    member: Member,
    *,
    name: str | None,
    phone: str | None,
    community: str | None,
    age_band: str | None,
    actor: StaffUser | None,
    remote_addr: str = "",
) -> Member:
    """A blank phone keeps the current one (staff who only see it masked can still edit)."""
    fields = validate_member(name, phone if (phone or "").strip() else member.phone, community, age_band)
    if fields.phone != member.phone and _phone_taken(session, fields.phone, except_id=member.id):
        raise _duplicate_phone()
    changed = [f for f in ("name", "phone", "community", "age_band") if getattr(member, f) != getattr(fields, f)]
    member.name, member.phone, member.community, member.age_band = fields.name, fields.phone, fields.community, fields.age_band
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _duplicate_phone() from None
    # Which fields changed, never their values (the log must not hold personal data).
    record_audit(session, actor, "member.update", target=f"member:{member.id}", detail=",".join(changed), remote_addr=remote_addr)
    return member


def set_member_active(session: Session, member: Member, active: bool, *, actor: StaffUser | None, remote_addr: str = "") -> None:
    member.active = active
    record_audit(session, actor, "member.activate" if active else "member.deactivate", target=f"member:{member.id}", remote_addr=remote_addr)


def reissue_card(session: Session, member: Member, *, actor: StaffUser | None, remote_addr: str = "") -> int:
    """A new card revokes every older one (lost card, stolen card)."""
    member.card_serial += 1
    record_audit(session, actor, "member.card_reissue", target=f"member:{member.id}", detail=f"serial={member.card_serial}", remote_addr=remote_addr)
    return member.card_serial


def search_members(session: Session, query: str = "", *, page: int = 1, per_page: int = 50) -> tuple[list[Member], int]:
    statement = select(Member)
    text = " ".join(query.split())[:40]
    if text:
        like = f"%{text.replace('%', '').replace('_', '')}%"
        conditions = [Member.name.like(like), Member.community.like(like)]
        digits = "".join(ch for ch in text if ch.isdigit())
        if len(digits) >= 4:  # a phone fragment: last four digits is what people remember
            conditions.append(Member.phone.like(f"%{digits}%"))
        statement = statement.where(or_(*conditions))
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    page = max(page, 1)
    rows = session.scalars(statement.order_by(Member.id.desc()).offset((page - 1) * per_page).limit(per_page))
    return list(rows), total


# ---- member QR cards ----


def card_token(member: Member, signer: TokenSigner, centre_code: str) -> str:
    return signer.sign(f"{CARD_PREFIX}.{centre_code}.{member.id}.{member.card_serial}")


def looks_like_card(code: str) -> bool:
    return code.startswith(CARD_PREFIX + ".")


def resolve_card(session: Session, token: str, signer: TokenSigner, centre_code: str) -> Member:
    """The member a scanned card belongs to, or CardError with the reason it is refused."""
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != CARD_PREFIX or not parts[2].isdigit() or not parts[3].isdigit():
        raise CardError("card_invalid", _l("This member card cannot be read. Please ask the staff at the desk."))
    _, card_centre, member_id, serial, _signature = parts
    if card_centre != centre_code:
        raise CardError("card_wrong_centre", _l("This member card belongs to another centre. Please use it there, or register here at the desk."))
    if signer.verify(token) is None:
        raise CardError("card_tampered", _l("This member card is not genuine. Please ask the staff at the desk."))
    member = session.get(Member, int(member_id))
    if member is None:
        raise CardError("card_unknown", _l("This member card is not registered here. Please ask the staff at the desk."))
    if int(serial) != member.card_serial:
        raise CardError("card_revoked", _l("This member card has been replaced by a newer one. Please use your new card."))
    if not member.active:
        raise CardError("member_inactive", _l("This membership is not active. Please ask the staff at the desk."))
    return member
