from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiosk.db import Base, UTCDateTime, utcnow


class OutboxEvent(Base):
    """Something the district must learn of, written in the same transaction as the change.

    Append-only; ``id`` is the centre's sequence number (the hub acks by it), ``event_id`` the
    global identity the hub deduplicates on. The payload never holds a name; a person is a
    phone sealed to the hub's public key (``person_sealed``, see kiosk.sync.outbox).

    The sequence has no gaps: SQLite gives an INTEGER PRIMARY KEY max(id) + 1, a rolled-back
    transaction gives its number back, and rows are never deleted.
    """

    __tablename__ = "outbox_event"

    id: Mapped[int] = mapped_column(primary_key=True)  # seq
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    schema_version: Mapped[int] = mapped_column(default=1)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    payload: Mapped[dict] = mapped_column(JSON)
    # When the hub last acknowledged it. Informational only: what to send is decided by the
    # hub's acked_seq, never by this mark (a hub restored from a backup asks again).
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SyncState(Base):
    """This kiosk's link to the hub (one row, id 1): its key, the hub's last answer, the outcome
    of the last run. Written by `kiosk enrol` and `kiosk sync`, shown on the staff sync page."""

    __tablename__ = "sync_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    hub_url: Mapped[str] = mapped_column(String(200), default="")
    centre_code: Mapped[str] = mapped_column(String(32), default="")
    key_id: Mapped[str] = mapped_column(String(40), default="")
    key_secret: Mapped[str] = mapped_column(String(100), default="")
    # The hub's X25519 public key: phones are sealed to it (public, not a secret).
    hub_public_key: Mapped[str] = mapped_column(String(64), default="")
    acked_seq: Mapped[int] = mapped_column(default=0)  # the hub's last answer
    pull_cursor: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(Text, default="")
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DistrictItem(Base):
    """What the district published, as last pulled (activities and notices are also applied to
    their own tables; reward lists live only here until the points feature shows them)."""

    __tablename__ = "district_item"
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int]
    deleted: Mapped[bool] = mapped_column(default=False)
    data: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
