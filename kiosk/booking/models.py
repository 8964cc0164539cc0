"""Free services (理发, 缝补, 法律咨询 …), their schedules, slots, bookings and the day's queue.

Slots are computed from a service's weekly templates, its per-date overrides and the centre's
closure days; a slot becomes a row (``service_slot``) when the first person books it. The row
keeps its time and its bookings whatever the template later says, so a template change never
moves an existing booking. ``booked`` only grows through ``booked = booked + 1 WHERE booked <
capacity``; the CHECKs are the last line.

Ticket numbers come from ``ticket_counter`` (one row per service and day), incremented in the
same serialised write as the booking: a failed booking rolls its number back (gap-free) and
``UNIQUE(service_id, day, ticket_seq)`` is the last word across processes.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time

from sqlalchemy import CheckConstraint, Date, Enum, ForeignKey, Index, String, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiosk.db import Base, UTCDateTime, utcnow
from kiosk.members.models import Member


def _enum(cls, length: int = 16):
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class ServiceCategory(enum.StrEnum):
    HAIRCUT = "haircut"  # 理发
    MENDING = "mending"  # 缝补
    LEGAL = "legal"  # 法律咨询
    TAX = "tax"  # 税费政策
    COUNSELLING = "counselling"  # 心理健康
    PARENTING = "parenting"  # 家庭教育
    OTHER = "other"


class Service(Base):
    __tablename__ = "service"
    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        CheckConstraint("lead_minutes >= 0", name="lead_not_negative"),
        CheckConstraint("horizon_days > 0", name="horizon_positive"),
        CheckConstraint("per_person_limit > 0", name="limit_positive"),
        CheckConstraint("cancel_minutes >= 0", name="cancel_not_negative"),
        CheckConstraint("points_on_serve >= 0", name="points_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30))
    # One letter per service: its tickets read 理发 A012.
    prefix: Mapped[str] = mapped_column(String(2), unique=True)
    category: Mapped[ServiceCategory] = mapped_column(_enum(ServiceCategory))
    description: Mapped[str] = mapped_column(Text, default="")
    place: Mapped[str] = mapped_column(String(60), default="")
    icon: Mapped[str] = mapped_column(String(8), default="")  # an emoji shown on the tile
    duration_minutes: Mapped[int] = mapped_column(default=20)
    # Booking rules: at least lead_minutes before the slot, at most horizon_days ahead,
    # per_person_limit open bookings of this service, cancellable until cancel_minutes before.
    lead_minutes: Mapped[int] = mapped_column(default=30)
    horizon_days: Mapped[int] = mapped_column(default=14)
    per_person_limit: Mapped[int] = mapped_column(default=1)
    cancel_minutes: Mapped[int] = mapped_column(default=60)
    # No-show policy: noshow_limit no-shows within noshow_days block kiosk booking for block_days.
    noshow_limit: Mapped[int] = mapped_column(default=3)
    noshow_days: Mapped[int] = mapped_column(default=90)
    block_days: Mapped[int] = mapped_column(default=30)
    # Points a member earns when served (0: none). Booking itself never earns points.
    points_on_serve: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    demo_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    providers: Mapped[list[Provider]] = relationship(back_populates="service", order_by="Provider.id")
    templates: Mapped[list[ScheduleTemplate]] = relationship(back_populates="service", order_by="ScheduleTemplate.weekday, ScheduleTemplate.starts")


class ProviderKind(enum.StrEnum):
    VOLUNTEER = "volunteer"
    ORGANISATION = "organisation"


class Provider(Base):
    """Who gives the service: a volunteer or a partner organisation (a law firm)."""

    __tablename__ = "service_provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[ProviderKind] = mapped_column(_enum(ProviderKind), default=ProviderKind.VOLUNTEER)
    active: Mapped[bool] = mapped_column(default=True)

    service: Mapped[Service] = relationship(back_populates="providers")


class ScheduleTemplate(Base):
    """Every week on ``weekday`` (0 = Monday) from ``starts`` to ``ends`` in slots of
    ``slot_minutes`` with ``capacity`` places each (e.g. 2 chairs)."""

    __tablename__ = "service_template"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("ends > starts", name="ends_after_start"),
        CheckConstraint("slot_minutes > 0", name="slot_positive"),
        CheckConstraint("capacity > 0", name="capacity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("service_provider.id"))
    weekday: Mapped[int]
    starts: Mapped[time] = mapped_column(Time)
    ends: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int] = mapped_column(default=20)
    capacity: Mapped[int] = mapped_column(default=1)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)

    service: Mapped[Service] = relationship(back_populates="templates")
    provider: Mapped[Provider | None] = relationship()


class ScheduleOverride(Base):
    """One date of one service that differs from its templates: closed, or other hours."""

    __tablename__ = "service_override"
    __table_args__ = (
        UniqueConstraint("service_id", "day"),
        CheckConstraint("closed OR (starts IS NOT NULL AND ends IS NOT NULL AND ends > starts)", name="hours_when_open"),
        CheckConstraint("slot_minutes IS NULL OR slot_minutes > 0", name="slot_positive"),
        CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    day: Mapped[date] = mapped_column(Date)
    closed: Mapped[bool] = mapped_column(default=False)
    starts: Mapped[time | None] = mapped_column(Time)
    ends: Mapped[time | None] = mapped_column(Time)
    slot_minutes: Mapped[int | None]
    capacity: Mapped[int | None]
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("service_provider.id"))
    note: Mapped[str] = mapped_column(String(60), default="")


class ClosureDay(Base):
    """A day the whole centre is closed (a public holiday): no service has slots."""

    __tablename__ = "closure_day"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    reason: Mapped[str] = mapped_column(String(40), default="")


class Slot(Base):
    __tablename__ = "service_slot"
    __table_args__ = (
        UniqueConstraint("service_id", "starts_at"),
        CheckConstraint("booked >= 0", name="booked_not_negative"),
        CheckConstraint("booked <= capacity", name="not_overbooked"),
        CheckConstraint("capacity > 0", name="capacity_positive"),
        Index("ix_service_slot_service_id_day", "service_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    day: Mapped[date] = mapped_column(Date)  # local date
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    capacity: Mapped[int]
    booked: Mapped[int] = mapped_column(default=0)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("service_provider.id"))

    service: Mapped[Service] = relationship()


class TicketCounter(Base):
    __tablename__ = "ticket_counter"

    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class BookingStatus(enum.StrEnum):
    BOOKED = "booked"  # waiting for its turn
    CALLED = "called"  # on the call display now
    SERVED = "served"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


OPEN_STATUSES = (BookingStatus.BOOKED, BookingStatus.CALLED)


class BookingChannel(enum.StrEnum):
    KIOSK = "kiosk"  # phone keypad or member card at the kiosk
    STAFF = "staff"  # booked by the desk for someone
    WALK_IN = "walk_in"  # a ticket issued at the desk for today, no slot
    WAITLIST = "waitlist"  # promoted from the waitlist when someone cancelled


class Booking(Base):
    """A ticket: a booking of a slot, or a walk-in ticket for today (slot_id NULL)."""

    __tablename__ = "booking"
    __table_args__ = (
        UniqueConstraint("service_id", "day", "ticket_seq"),
        Index("ix_booking_day_service_id", "day", "service_id"),
        Index("ix_booking_person_key", "person_key"),
        CheckConstraint("ticket_seq > 0", name="ticket_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("service_slot.id"), index=True)
    day: Mapped[date] = mapped_column(Date)  # local date of the ticket
    ticket_seq: Mapped[int]
    ticket: Mapped[str] = mapped_column(String(8))  # A012
    # Where it stands in the day's queue: the slot's start, or the walk-in's arrival.
    queue_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[BookingStatus] = mapped_column(_enum(BookingStatus), default=BookingStatus.BOOKED)
    channel: Mapped[BookingChannel] = mapped_column(_enum(BookingChannel))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    phone: Mapped[str | None] = mapped_column(String(11))  # stays on the kiosk; never on a display
    person_key: Mapped[str] = mapped_column(String(24))  # m:<member> or p:<phone>; walk-ins w:<id>
    # One per confirmation screen: a double tap or a retried request books once.
    request_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    desk: Mapped[str] = mapped_column(String(8), default="")  # 2 (号位) when called
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    call_count: Mapped[int] = mapped_column(default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # served / no-show / cancelled
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("service_provider.id"))
    served_minutes: Mapped[int | None]  # the volunteer's time for this person
    note: Mapped[str] = mapped_column(String(200), default="")
    device_id: Mapped[str] = mapped_column(String(32), default="")
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    service: Mapped[Service] = relationship()
    slot: Mapped[Slot | None] = relationship()
    member: Mapped[Member | None] = relationship()
    provider: Mapped[Provider | None] = relationship()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"
    PROMOTED = "promoted"  # got a place when someone cancelled (booking_id)
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class WaitlistEntry(Base):
    __tablename__ = "booking_waitlist"
    __table_args__ = (
        # One place in the line per person and slot; a cancelled entry moves its key aside.
        UniqueConstraint("service_id", "starts_at", "person_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the slot asked for
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    phone: Mapped[str | None] = mapped_column(String(11))
    person_key: Mapped[str] = mapped_column(String(40), index=True)  # the person's waitlist news, read before every booking
    status: Mapped[WaitlistStatus] = mapped_column(_enum(WaitlistStatus), default=WaitlistStatus.WAITING)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    # When the person saw the promotion at the kiosk (their next card scan or phone entry).
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    service: Mapped[Service] = relationship()
    booking: Mapped[Booking | None] = relationship()


class BlockLift(Base):
    """Staff lifted a person's no-show block: no-shows before ``lifted_at`` no longer count."""

    __tablename__ = "booking_block_lift"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_key: Mapped[str] = mapped_column(String(24), index=True)
    lifted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    reason: Mapped[str] = mapped_column(String(200))
