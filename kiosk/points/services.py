"""Points (积分): the append-only ledger, rewards, and redemption (积分兑换).

award_points() is the one door through which every feature changes a balance, always inside
the caller's transaction, so the thing that earns points and its entry commit together.
"""

from __future__ import annotations

import io
import secrets
import warnings
from dataclasses import dataclass

from sqlalchemy import CursorResult, Update, func, select, update
from sqlalchemy.orm import Session

from kiosk.db import utcnow, write_transaction
from kiosk.errors import KioskError
from kiosk.i18n import _l
from kiosk.members.models import Member
from kiosk.points.models import PointsEntry, PointsReason, Redemption, RedemptionStatus, Reward
from kiosk.staff.models import StaffUser
from kiosk.staff.services import record_audit
from kiosk.sync.outbox import record_event
from kiosk.validation import clean_text, parse_whole_number

MAX_DELTA = 10_000
MAX_COST = 100_000
MAX_STOCK = 100_000
MAX_PICTURE_BYTES = 2 * 1024 * 1024
MAX_PICTURE_PIXELS = 4096 * 4096
PICTURE_SIZE = 480


class PointsError(KioskError):
    pass


# ---- the ledger ----


def parse_integer(raw: str | int | None, field: str) -> int:
    """Whole numbers only: "1.5", "1e3", "abc", "" and True are refused, not rounded."""
    return parse_whole_number(raw, field, error=PointsError)


def award_points(
    session: Session,
    member_id: int,
    delta: int,
    reason: PointsReason,
    *,
    reference: str | None = None,
    note: str = "",
    actor: StaffUser | None = None,
) -> PointsEntry:
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 or abs(delta) > MAX_DELTA:
        raise PointsError("invalid_delta", _l("Points must be a whole number between -%(n)d and %(n)d, not zero.", n=MAX_DELTA), field="delta")
    entry = PointsEntry(
        member_id=member_id, delta=delta, reason=PointsReason(reason), reference=reference, note=note[:500], actor_id=actor.id if actor else None
    )
    session.add(entry)
    session.flush()
    return entry


def balance(session: Session, member_id: int) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(PointsEntry.member_id == member_id)) or 0)


def recent_entries(session: Session, member_id: int, limit: int = 10) -> list[PointsEntry]:
    query = select(PointsEntry).where(PointsEntry.member_id == member_id).order_by(PointsEntry.id.desc()).limit(limit)
    return list(session.scalars(query))


@dataclass(frozen=True)
class CorrectionFields:
    delta: int
    note: str


def parse_correction(delta_raw: str | int | None, note: str | None) -> CorrectionFields:
    delta = parse_integer(delta_raw, "delta")
    clean_note = " ".join((note or "").split())
    if not clean_note.isprintable():
        raise PointsError("note_invalid", _l("This contains characters that cannot be used."), field="note")
    if not clean_note:
        raise PointsError("note_required", _l("Please say why the points are corrected."), field="note")
    return CorrectionFields(delta, clean_note)


def correct_points(session: Session, member: Member, delta_raw: str | int | None, note: str | None, *, actor: StaffUser, remote_addr: str = "") -> PointsEntry:
    """A staff correction is a new entry with a reason, never an edit of an old one."""
    correction = parse_correction(delta_raw, note)
    with write_transaction(session):
        if correction.delta < 0 and balance(session, member.id) + correction.delta < 0:
            raise PointsError("balance_negative", _l("The balance cannot go below zero."), field="delta")
        entry = award_points(session, member.id, correction.delta, PointsReason.CORRECTION, note=correction.note, actor=actor)
        record_event(session, "points.corrected", {"member_id": member.id, "points": correction.delta})
        record_audit(session, actor, "points.correct", target=f"member:{member.id}", detail=f"delta={correction.delta}", remote_addr=remote_addr)
    return entry


# ---- rewards ----


@dataclass(frozen=True)
class RewardFields:
    name: str
    description: str
    cost: int
    stock: int
    active: bool
    picture: tuple[bytes, str] | None  # re-encoded picture and its type; None keeps the old one


def parse_reward(
    name: str | None, description: str | None, cost_raw: str | int | None, stock_raw: str | int | None, *, active: bool = True, picture: bytes | None = None
) -> RewardFields:
    clean_name = clean_text(name, 40, "name", error=PointsError, required=True)
    clean_description = clean_text(description, 200, "description", error=PointsError)
    cost = _whole(
        cost_raw,
        "cost",
        low=1,
        high=MAX_COST,
        range_code="bad_cost",
        range_message=_l("The cost must be between 1 and %(n)d points.", n=MAX_COST),
    )
    stock = _whole(
        stock_raw,
        "stock",
        low=0,
        high=MAX_STOCK,
        range_code="bad_stock",
        range_message=_l("The stock must be between 0 and %(n)d.", n=MAX_STOCK),
    )
    return RewardFields(clean_name, clean_description, cost, stock, bool(active), normalise_picture(picture) if picture is not None else None)


def _whole(raw: str | int | None, field: str, *, low: int, high: int, range_code: str, range_message) -> int:
    return parse_whole_number(raw, field, error=PointsError, low=low, high=high, range_code=range_code, range_message=range_message)


def normalise_picture(data: bytes, *, size: int = PICTURE_SIZE, error: type[KioskError] = PointsError) -> tuple[bytes, str]:
    """Accept a JPEG/PNG/WebP photo, re-encode it as a JPEG of at most ``size`` pixels a side
    (a kiosk tile by default; the catalogue's shelf map is larger). Refusals are ``error``s."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise error("picture_empty", _l("The picture file is empty."), field="picture")
    if len(data) > MAX_PICTURE_BYTES:
        raise error("picture_too_large", _l("The picture must be smaller than 2 MB."), field="picture")
    try:
        with warnings.catch_warnings():
            # Pillow warns at open about a huge canvas; the size check below refuses it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            # The header gives the size: refuse a huge canvas before decoding it (a 420 KB
            # PNG of 12000×12000 took 1.2 GB to decode).
            width, height = image.size
            if width * height > MAX_PICTURE_PIXELS:
                raise error("picture_too_big", _l("The picture is too big (at most 4096 × 4096 pixels)."), field="picture")
            image.load()
            if image.format not in {"JPEG", "PNG", "WEBP"}:
                raise error("picture_format", _l("Please upload a JPEG or PNG picture."), field="picture")
            small = image.convert("RGB")
            small.thumbnail((size, size))
            out = io.BytesIO()
            small.save(out, format="JPEG", quality=85)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise error("picture_format", _l("Please upload a JPEG or PNG picture."), field="picture") from None
    return out.getvalue(), "image/jpeg"


def _name_taken(session: Session, name: str, except_id: int | None = None) -> bool:
    query = select(func.count()).select_from(Reward).where(Reward.name == name)
    if except_id is not None:
        query = query.where(Reward.id != except_id)
    return bool(session.scalar(query))


def save_reward(
    session: Session,
    reward: Reward | None,
    *,
    name: str | None,
    description: str | None,
    cost: str | int | None,
    stock: str | int | None,
    active: bool = True,
    picture: bytes | None = None,
    actor: StaffUser | None,
    remote_addr: str = "",
) -> Reward:
    fields = parse_reward(name, description, cost, stock, active=active, picture=picture)
    with write_transaction(session):
        if _name_taken(session, fields.name, reward.id if reward else None):
            raise PointsError("duplicate_reward", _l("A reward with this name exists already."), status=409, field="name")
        created = reward is None
        if reward is None:
            reward = Reward(name=fields.name)
            session.add(reward)
        reward.name, reward.description, reward.cost, reward.stock, reward.active = fields.name, fields.description, fields.cost, fields.stock, fields.active
        if fields.picture:
            reward.picture, reward.picture_type = fields.picture
        session.flush()
        record_audit(
            session,
            actor,
            "reward.create" if created else "reward.update",
            target=f"reward:{reward.id}",
            detail=f"cost={fields.cost} stock={fields.stock}",
            remote_addr=remote_addr,
        )
    return reward


def list_rewards(session: Session, *, available_only: bool = False) -> list[Reward]:
    query = select(Reward).order_by(Reward.cost, Reward.name)
    if available_only:
        query = query.where(Reward.active.is_(True), Reward.stock > 0)
    return list(session.scalars(query))


def get_reward(session: Session, reward_id) -> Reward:
    try:
        reward = session.get(Reward, int(reward_id))
    except (TypeError, ValueError):
        reward = None
    if reward is None:
        raise PointsError("unknown_reward", _l("This reward does not exist."), status=404)
    return reward


# ---- redemption ----


def _updated(session: Session, statement: Update) -> int:
    """Run a conditional UPDATE; how many rows it changed (0: the condition no longer held)."""
    result = session.execute(statement)
    assert isinstance(result, CursorResult)  # an UPDATE answers with a cursor result
    return result.rowcount


def _new_pickup_code(session: Session) -> str:
    """Six digits, unique among redemptions still waiting at the desk."""
    while True:
        code = f"{secrets.randbelow(1_000_000):06d}"
        taken = session.scalar(
            select(func.count()).select_from(Redemption).where(Redemption.status == RedemptionStatus.PENDING, Redemption.pickup_code == code)
        )
        if not taken:
            return code


def redeem(
    session: Session,
    *,
    member_id: int,
    reward_id,
    channel: str,
    request_key: str,
    actor: StaffUser | None = None,
    remote_addr: str = "",
    device_id: int | None = None,
) -> Redemption:
    """Exchange points for a reward. A unit of work of its own: commits on success.

    Under BEGIN IMMEDIATE the balance check, the conditional stock decrement and the ledger
    entry run as one writer at a time, so neither stock nor balance can go below zero however
    many kiosks and desks race. The same request_key (a double tap, a retry) returns the first
    answer instead of redeeming twice.
    """
    request_key = (request_key or "").strip()
    if not 8 <= len(request_key) <= 64:
        raise PointsError("bad_request_key", _l("Please go back and try again."), status=400)
    with write_transaction(session):
        existing = session.scalar(select(Redemption).where(Redemption.request_key == request_key))
        if existing is not None:
            if existing.member_id != member_id:
                raise PointsError("bad_request_key", _l("Please go back and try again."), status=409)
            return existing
        member = session.scalar(select(Member).where(Member.id == member_id).with_for_update())
        if member is None or not member.active:
            raise PointsError("member_inactive", _l("This membership is not active. Please ask the staff at the desk."), status=403)
        reward = get_reward(session, reward_id)
        if not reward.active:
            raise PointsError("reward_unavailable", _l("This reward is no longer offered."), status=409)
        if balance(session, member.id) < reward.cost:
            raise PointsError("insufficient_points", _l("Not enough points for this reward."), status=409)
        if _updated(session, update(Reward).where(Reward.id == reward.id, Reward.stock > 0).values(stock=Reward.stock - 1)) != 1:
            raise PointsError("out_of_stock", _l("Sorry, this reward has just run out."), status=409)
        redemption = Redemption(
            member_id=member.id, reward_id=reward.id, cost=reward.cost, pickup_code=_new_pickup_code(session), channel=channel, request_key=request_key
        )
        session.add(redemption)
        session.flush()
        award_points(session, member.id, -reward.cost, PointsReason.REDEMPTION, reference=f"redemption:{redemption.id}", actor=actor)
        record_event(session, "points.redeemed", {"redemption_id": redemption.id, "member_id": member.id, "reward": reward.name, "points": -reward.cost})
        record_audit(
            session,
            actor,
            "points.redeem",
            target=f"member:{member.id}",
            # Which kiosk it was (an enrolled device), so a disputed redemption can be traced.
            detail=f"reward={reward.id} redemption={redemption.id} channel={channel}" + (f" device={device_id}" if device_id else ""),
            remote_addr=remote_addr,
            channel=channel,
        )
    session.refresh(redemption)
    return redemption


def _close(session: Session, redemption_id, new_status: RedemptionStatus, actor: StaffUser, note: str) -> Redemption:
    try:
        redemption_id = int(redemption_id)
    except (TypeError, ValueError):
        raise PointsError("unknown_redemption", _l("This redemption does not exist."), status=404) from None
    closed = _updated(
        session,
        update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.status == RedemptionStatus.PENDING)
        .values(status=new_status, closed_at=utcnow(), closed_by_id=actor.id, note=note),
    )
    redemption = session.get(Redemption, redemption_id)
    if redemption is None:
        raise PointsError("unknown_redemption", _l("This redemption does not exist."), status=404)
    if closed != 1:
        raise PointsError("redemption_closed", _l("This redemption was already handed over or cancelled."), status=409)
    session.refresh(redemption)
    return redemption


def hand_over(session: Session, redemption_id, *, actor: StaffUser, remote_addr: str = "") -> Redemption:
    with write_transaction(session):
        redemption = _close(session, redemption_id, RedemptionStatus.HANDED_OVER, actor, "")
        record_audit(session, actor, "redemption.hand_over", target=f"redemption:{redemption.id}", remote_addr=remote_addr)
    return redemption


def cancel_redemption(session: Session, redemption_id, *, actor: StaffUser, note: str | None = "", remote_addr: str = "") -> Redemption:
    """Stock goes back on the shelf and the points go back to the member, as new entries."""
    note = " ".join((note or "").split())[:200]
    if not note.isprintable():
        raise PointsError("note_invalid", _l("This contains characters that cannot be used."), field="note")
    with write_transaction(session):
        redemption = _close(session, redemption_id, RedemptionStatus.CANCELLED, actor, note)
        session.execute(update(Reward).where(Reward.id == redemption.reward_id).values(stock=Reward.stock + 1))
        award_points(
            session, redemption.member_id, redemption.cost, PointsReason.REDEMPTION_CANCELLED, reference=f"redemption:{redemption.id}", note=note, actor=actor
        )
        record_event(session, "points.redemption_cancelled", {"redemption_id": redemption.id, "member_id": redemption.member_id, "points": redemption.cost})
        record_audit(session, actor, "redemption.cancel", target=f"redemption:{redemption.id}", detail=note, remote_addr=remote_addr)
    return redemption


def pending_redemptions(session: Session, pickup_code: str = "") -> list[Redemption]:
    query = select(Redemption).where(Redemption.status == RedemptionStatus.PENDING).order_by(Redemption.id)
    code = "".join(ch for ch in pickup_code if ch.isdigit())
    if code:
        query = query.where(Redemption.pickup_code == code)
    return list(session.scalars(query))


def recent_redemptions(session: Session, member_id: int | None = None, limit: int = 50) -> list[Redemption]:
    query = select(Redemption).order_by(Redemption.id.desc()).limit(limit)
    if member_id is not None:
        query = query.where(Redemption.member_id == member_id)
    return list(session.scalars(query))
