from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.db import Base, UTCDateTime


class Notice(Base):
    """A notice on the home screen: district-wide (arrives by sync) or the centre's own."""

    __tablename__ = "notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stable key from whoever published it, so re-delivery (sync, demo) updates, never duplicates.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # "district" or "centre"
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
