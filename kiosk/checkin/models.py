from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiosk.db import Base, UTCDateTime, utcnow
from kiosk.members.models import Member


def _enum(cls, length: int = 16):
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class ActivityCategory(enum.StrEnum):
    AFTER_SCHOOL = "after_school"  # 四点半课堂, 暑期夏令营
    CULTURE = "culture"  # 书法, 舞蹈, 瑜伽
    LECTURE = "lecture"  # 公益讲座, legal and tax lectures
    VOLUNTEER = "volunteer"  # 志愿服务
    CHILDREN = "children"  # 小秧苗, 少年宫
    COMMUNITY = "community"  # 集市, festivals
    OTHER = "other"


class CheckinPolicy(enum.StrEnum):
    ONCE = "once"  # one check-in per person for the whole activity (a lecture)
    DAILY = "daily"  # one per person per day (each session of a weekly class)
    REPEATABLE = "repeatable"  # every visit counts (a volunteer shift), with a double-tap guard


class ActivityStatus(enum.StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class Activity(Base):
    __tablename__ = "activity"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity_positive"),
        CheckConstraint("points >= 0", name="points_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(60))
    category: Mapped[ActivityCategory] = mapped_column(_enum(ActivityCategory))
    description: Mapped[str] = mapped_column(Text, default="")
    place: Mapped[str] = mapped_column(String(60), default="")
    # The first session; a weekly activity repeats it every 7 days until repeat_until.
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    weekly: Mapped[bool] = mapped_column(default=False)
    repeat_until: Mapped[date | None] = mapped_column(Date)
    capacity: Mapped[int | None]  # per session; None = no limit
    points: Mapped[int] = mapped_column(default=0)
    policy: Mapped[CheckinPolicy] = mapped_column(_enum(CheckinPolicy))
    opens_minutes_before: Mapped[int] = mapped_column(default=30)
    closes_minutes_after: Mapped[int] = mapped_column(default=30)
    status: Mapped[ActivityStatus] = mapped_column(_enum(ActivityStatus), default=ActivityStatus.ACTIVE)
    # District-wide activities arrive by sync and are read-only here.
    source: Mapped[str] = mapped_column(String(16), default="centre")
    external_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def read_only(self) -> bool:
        return self.source == "district"


class CheckinMethod(enum.StrEnum):
    POSTER = "poster"  # a phone scanned the printed poster QR
    ROTATING = "rotating"  # a phone scanned the rotating QR on a screen
    KIOSK_CARD = "kiosk_card"  # member card at the kiosk scanner
    KIOSK_PHONE = "kiosk_phone"  # phone number on the kiosk keypad
    STAFF = "staff"  # staff at the desk, with a reason


class CheckinStatus(enum.StrEnum):
    ACTIVE = "active"
    UNDONE = "undone"


class CheckIn(Base):
    """One person at one session of an activity.

    (activity_id, person_key, occurrence_key) is unique: the database, not the code, makes a
    second check-in impossible however many taps, phones or kiosks race. person_key is
    "m:<member id>" or "p:<phone>" (a guest); occurrence_key is "all" (policy once), the
    session's date (daily) or a per-check-in value (repeatable). Undoing a check-in moves its
    occurrence_key aside, so the person can check in again and the undone row stays as a record.
    """

    __tablename__ = "check_in"
    __table_args__ = (
        UniqueConstraint("activity_id", "person_key", "occurrence_key"),
        Index("ix_check_in_activity_id_session_date", "activity_id", "session_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    phone: Mapped[str | None] = mapped_column(String(11))  # guests only; stays on the kiosk
    person_key: Mapped[str] = mapped_column(String(24))
    occurrence_key: Mapped[str] = mapped_column(String(48))
    session_date: Mapped[date] = mapped_column(Date)  # local date of the session attended
    method: Mapped[CheckinMethod] = mapped_column(_enum(CheckinMethod))
    status: Mapped[CheckinStatus] = mapped_column(_enum(CheckinStatus), default=CheckinStatus.ACTIVE)
    points: Mapped[int] = mapped_column(default=0)
    device_id: Mapped[str] = mapped_column(String(32))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    reason: Mapped[str] = mapped_column(Text, default="")  # staff check-in or undo
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    activity: Mapped[Activity] = relationship()
    member: Mapped[Member | None] = relationship()


class KioskLock(Base):
    """Staff can lock the kiosk to one running activity (the check-in tile goes straight to it)."""

    __tablename__ = "kiosk_lock"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), unique=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id"))
    locked_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    locked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    activity: Mapped[Activity] = relationship()
