"""Members: registration at the desk, search, member QR cards."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiosk.db import utcnow, write_transaction
from kiosk.errors import KioskError
from kiosk.i18n import _l
from kiosk.identify.services import PhoneError, parse_phone
from kiosk.members.models import AgeBand, Member
from kiosk.points.models import PointsEntry
from kiosk.privacy import mask_phones_in_text
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


def parse_member(name: str | None, phone: str | None, community: str | None, age_band: str | None) -> MemberFields:
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
    fields = parse_member(name, phone, community, age_band)
    if not consent:
        raise MemberError("consent_required", _l("The member must agree to the privacy notice first."), field="consent")
    with write_transaction(session):
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
        _flush_or_duplicate(session)
        record_audit(session, actor, "member.register", target=f"member:{member.id}", remote_addr=remote_addr)
        # De-identified for the district: the phone sealed to the hub, the age band, no name.
        record_event(session, "member.registered", {"member_id": member.id, "age_band": member.age_band.value, **person_field(session, member.phone)})
    return member


def _flush_or_duplicate(session: Session) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # Two desks saving the same phone at once: the unique index decides.
        raise _duplicate_phone() from None


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
    with write_transaction(session):
        fields = parse_member(name, phone if (phone or "").strip() else member.phone, community, age_band)
        if fields.phone != member.phone and _phone_taken(session, fields.phone, except_id=member.id):
            raise _duplicate_phone()
        changed = [f for f in ("name", "phone", "community", "age_band") if getattr(member, f) != getattr(fields, f)]
        member.name, member.phone, member.community, member.age_band = fields.name, fields.phone, fields.community, fields.age_band
        _flush_or_duplicate(session)
        # Which fields changed, never their values (the log must not hold personal data).
        record_audit(session, actor, "member.update", target=f"member:{member.id}", detail=",".join(changed), remote_addr=remote_addr)
    return member


def set_member_active(session: Session, member: Member, active: bool, *, actor: StaffUser | None, remote_addr: str = "") -> None:
    with write_transaction(session):
        member.active = active
        record_audit(session, actor, "member.activate" if active else "member.deactivate", target=f"member:{member.id}", remote_addr=remote_addr)


def reissue_card(session: Session, member: Member, *, actor: StaffUser | None, remote_addr: str = "") -> int:
    """A new card revokes every older one (lost card, stolen card)."""
    with write_transaction(session):
        member.card_serial += 1
        serial = member.card_serial
        record_audit(session, actor, "member.card_reissue", target=f"member:{member.id}", detail=f"serial={serial}", remote_addr=remote_addr)
    return serial


def get_member(session: Session, member_id: int) -> Member | None:
    return session.get(Member, member_id)


def balances(session: Session, members: list[Member]) -> dict[int, int]:
    """Every listed member's points balance in one query (not one per row)."""
    ids = [m.id for m in members]
    if not ids:
        return {}
    rows = session.execute(select(PointsEntry.member_id, func.sum(PointsEntry.delta)).where(PointsEntry.member_id.in_(ids)).group_by(PointsEntry.member_id))
    return {member_id: int(total) for member_id, total in rows}


def search_members(session: Session, query: str = "", *, page: int = 1, per_page: int = 50, any_digits: bool = False) -> tuple[list[Member], int]:
    """Members whose name or community contains ``query``, or whose phone matches it.

    Staff see phones masked (139****0002): their search matches a whole number or its last
    four digits only, never a run from the middle, which would let them grow the hidden
    digits one search at a time. ``any_digits`` (admins, who see whole numbers) matches any run.
    """
    statement = select(Member)
    text = " ".join(query.split())[:40]
    if text:
        like = f"%{text.replace('%', '').replace('_', '')}%"
        conditions: list[ColumnElement[bool]] = [Member.name.like(like), Member.community.like(like)]
        digits = "".join(ch for ch in text if ch.isdigit())
        if any_digits and len(digits) >= 4:
            conditions.append(Member.phone.like(f"%{digits}%"))
        elif len(digits) == 11:
            conditions.append(Member.phone == digits)
        elif len(digits) == 4:  # the last four digits: what people remember, and what staff see
            conditions.append(Member.phone.like(f"%{digits}"))
        statement = statement.where(or_(*conditions))
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    page = max(page, 1)
    rows = session.scalars(statement.order_by(Member.id.desc()).offset((page - 1) * per_page).limit(per_page))
    return list(rows), total


@dataclass(frozen=True)
class MemberExport:
    members: list[Member]
    balances: dict[int, int]
    full_phones: bool


def export_members(session: Session, query: str, *, kind: str, full_phones: bool, actor: StaffUser | None, remote_addr: str = "") -> MemberExport:
    """Every member matching ``query`` with their balances; the export is audited (who, which
    format, whether phones were shown in full) before anything is read."""
    with write_transaction(session):
        record_audit(session, actor, "member.export", detail=f"{kind} phones={'full' if full_phones else 'masked'}", remote_addr=remote_addr)
    members, _total = search_members(session, query, per_page=1_000_000, any_digits=full_phones)
    return MemberExport(members, balances(session, members), full_phones)


def staff_search(
    session: Session, query: str, *, page: int, per_page: int, any_digits: bool, actor: StaffUser | None, remote_addr: str = ""
) -> tuple[list[Member], int]:
    """A staff search of the members list; a search that names something is audited (with any
    phone number in it masked), so a hunt for hidden digits leaves a trail."""
    members, total = search_members(session, query, page=page, per_page=per_page, any_digits=any_digits)
    if query.strip() and page == 1:
        with write_transaction(session):
            record_audit(session, actor, "member.search", detail=f"q={mask_phones_in_text(query)} found={total}", remote_addr=remote_addr)
    return members, total


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


# ---- the card number: what a person keys in when the scanner fails ----
#
# Printed under the QR: the 6-digit member number and 4 check digits signed with the card's key
# and serial ("000123 4567"). The member number alone would not do: numbers are
# sequential, and typing a neighbour's would show and spend their points. The check digits make
# the card number as good as holding the card; a reissued card (new serial) gets a new number and
# the old one stops working, as its QR does. Ten digits, so never mistaken for a mobile number.
# Guessing is slowed by a rate limit on the kiosk (CARD_NUMBER_RATE_LIMIT).

CARD_CHECK_DIGITS = 4
CARD_NUMBER_LENGTH = 6 + CARD_CHECK_DIGITS


def card_number(member: Member, signer: TokenSigner) -> str:
    return member.member_number + signer.check_digits(f"{CARD_PREFIX}.{member.id}.{member.card_serial}", CARD_CHECK_DIGITS)[0]


def looks_like_card_number(text: str | None) -> bool:
    """Ten digits starting with 0 (member numbers are zero-padded to six digits; a centre has
    fewer than 100 000 members). A mobile number starts with 1, so ten digits starting with 1
    are a mobile number with a digit missing and get that message."""
    digits = "".join((text or "").split())
    return digits.isdigit() and len(digits) == CARD_NUMBER_LENGTH and digits.startswith("0")


def resolve_card_number(session: Session, text: str | None, signer: TokenSigner) -> Member:
    """The member a typed card number belongs to, or CardError (one message for every wrong
    number: it must not tell a guesser which member numbers exist)."""
    digits = "".join((text or "").split())
    wrong = CardError("card_number_wrong", _l("This card number is not right. Please check the number under the QR code on your card."), field="card_number")
    if not looks_like_card_number(digits):
        raise wrong
    member = session.get(Member, int(digits[:6]))
    if member is None or digits[6:] not in signer.check_digits(f"{CARD_PREFIX}.{member.id}.{member.card_serial}", CARD_CHECK_DIGITS):
        raise wrong
    if not member.active:
        raise CardError("member_inactive", _l("This membership is not active. Please ask the staff at the desk."))
    return member
