from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiosk.db import Base, UTCDateTime, utcnow
from kiosk.members.models import Member


class PointsReason(enum.StrEnum):
    CHECKIN = "checkin"
    VOLUNTEER = "volunteer"
    REDEMPTION = "redemption"
    REDEMPTION_CANCELLED = "redemption_cancelled"
    CHECKIN_UNDONE = "checkin_undone"
    CORRECTION = "correction"
    BOOKING_SERVED = "booking_served"  # a member was served at a booked service (per-service points)


class PointsEntry(Base):
    """Append-only ledger: the balance is SUM(delta), never a column that can drift.

    (reason, reference) is unique, so the thing that earns points (a check-in, a redemption)
    can never be counted twice, whatever retries or races happen. Corrections have no
    reference and are never deduplicated.
    """

    __tablename__ = "points_entry"
    __table_args__ = (
        UniqueConstraint("reason", "reference"),
        CheckConstraint("delta <> 0", name="delta_not_zero"),
        Index("ix_points_entry_member_id_id", "member_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    delta: Mapped[int]
    reason: Mapped[PointsReason] = mapped_column(Enum(PointsReason, native_enum=False, length=24, values_callable=lambda e: [m.value for m in e]))
    reference: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    # Staff who made it, or None for the system (a check-in, a kiosk redemption).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    member: Mapped[Member] = relationship()


class Reward(Base):
    __tablename__ = "reward"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("cost > 0", name="cost_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    cost: Mapped[int]
    stock: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    picture: Mapped[bytes | None] = mapped_column(LargeBinary)
    picture_type: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RedemptionStatus(enum.StrEnum):
    PENDING = "pending"  # points taken, reward waiting at the desk
    HANDED_OVER = "handed_over"
    CANCELLED = "cancelled"  # stock and points returned


class Redemption(Base):
    __tablename__ = "redemption"
    __table_args__ = (Index("ix_redemption_status_pickup_code", "status", "pickup_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    reward_id: Mapped[int] = mapped_column(ForeignKey("reward.id"))
    cost: Mapped[int]  # what was paid, even if the reward's cost changes later
    pickup_code: Mapped[str] = mapped_column(String(6))
    status: Mapped[RedemptionStatus] = mapped_column(
        Enum(RedemptionStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]), default=RedemptionStatus.PENDING
    )
    channel: Mapped[str] = mapped_column(String(8))  # "kiosk" or "desk"
    # The same tap sent twice (double tap, retry) carries the same key and gets the same answer.
    request_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    note: Mapped[str] = mapped_column(Text, default="")

    member: Mapped[Member] = relationship()
    reward: Mapped[Reward] = relationship()
