from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.db import Base, UTCDateTime, utcnow


class AgeBand(enum.StrEnum):
    """Age bands, not birth dates: enough for the district's statistics, less to protect."""

    CHILD = "0-17"
    YOUNG = "18-34"
    MIDDLE = "35-59"
    SIXTIES = "60-69"
    SEVENTIES = "70-79"
    EIGHTY_PLUS = "80+"


class Member(Base):
    """A resident registered at the desk. The phone stays on the kiosk (never synced raw)."""

    __tablename__ = "member"
    __table_args__ = (CheckConstraint("card_serial >= 1", name="card_serial_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30))
    # One kiosk database is one centre, so unique here is unique per centre.
    phone: Mapped[str] = mapped_column(String(11), unique=True)
    community: Mapped[str] = mapped_column(String(60), default="")
    age_band: Mapped[AgeBand] = mapped_column(Enum(AgeBand, native_enum=False, length=8, values_callable=lambda e: [m.value for m in e]))
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consent_version: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    # Printed into the card's token; re-issuing a card increments it, which revokes older cards.
    card_serial: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def member_number(self) -> str:
        return f"{self.id:06d}"
