from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.db import Base, UTCDateTime, utcnow


class KioskDevice(Base):
    """A browser staff enrolled as a kiosk. Only hashes of its secret and of its one-time
    enrolment code are stored; the secret itself lives in the kiosk browser's cookie."""

    __tablename__ = "kiosk_device"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # A one-time link (`kiosk device enrol-url`) that turns into the secret when opened.
    enrol_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrol_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(60), default="")
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "enrolled" if self.secret_hash else "pending"
