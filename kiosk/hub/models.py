"""The district hub's tables (KIOSK_ROLE=hub). They live in the same migration chain as the
kiosk's: an empty hub_* table on a kiosk, or an empty member table on the hub, costs nothing,
and one chain cannot fork (docs/sync.md, "One schema for both roles")."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, Enum, ForeignKey, Index, Integer, LargeBinary, PrimaryKeyConstraint, String, Text, UniqueConstraint, false, text
from sqlalchemy.dialects.postgresql import BIT, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiosk.centres.models import Centre
from kiosk.db import Base, UTCDateTime, utcnow

# 64-bit ids on PostgreSQL, SQLite's rowid on a demo hub.
BigId = BigInteger().with_variant(Integer, "sqlite")
Document = JSON().with_variant(JSONB(), "postgresql")


def _enum(cls, length: int = 16):
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class HubCentre(Base):
    """The hub's side of a centre's link: the acknowledged sequence (the hub owns the cursor)."""

    __tablename__ = "hub_centre"

    centre_id: Mapped[int] = mapped_column(ForeignKey("centre.id"), primary_key=True)
    acked_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_push_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    app_version: Mapped[str] = mapped_column(String(20), default="")

    centre: Mapped[Centre] = relationship()


class KeyStatus(enum.StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"  # rolled: still accepted until the new key is first used
    REVOKED = "revoked"


class HubKey(Base):
    """A centre's signing key. The secret is needed to check HMACs, so it is stored; the hub's
    database is the district's most protected store (docs/sync.md)."""

    __tablename__ = "hub_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centre.id"), index=True)
    secret: Mapped[str] = mapped_column(String(100))
    status: Mapped[KeyStatus] = mapped_column(_enum(KeyStatus), default=KeyStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    centre: Mapped[Centre] = relationship()


class HubEnrolment(Base):
    """A one-time enrolment code (stored as its hash) a district admin gave a centre."""

    __tablename__ = "hub_enrolment"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centre.id"))
    created_by: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    centre: Mapped[Centre] = relationship()


class HubNonce(Base):
    """Nonces seen within the skew window; a second use of one is a replay (401)."""

    __tablename__ = "hub_nonce"
    __table_args__ = (PrimaryKeyConstraint("key_id", "nonce"),)

    key_id: Mapped[str] = mapped_column(String(40))
    nonce: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class HubEvent(Base):
    """One event from one centre, exactly once: (centre_id, event_id) is unique and inserts say
    ON CONFLICT DO NOTHING. ``person`` is the hub's own pseudonym; no phone is ever stored."""

    __tablename__ = "hub_event"
    __table_args__ = (
        UniqueConstraint("centre_id", "event_id"),
        Index("ix_hub_event_centre_id_seq", "centre_id", "seq"),
        Index("ix_hub_event_day_centre_id", "day", "centre_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centre.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(40))
    schema_version: Mapped[int]
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    day: Mapped[date] = mapped_column(Date)  # the district's local date of occurred_at
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    person: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(Document)
    payload_hash: Mapped[str] = mapped_column(String(64))


class HubConflict(Base):
    """An event whose event_id the hub already holds with a different payload: kept aside,
    shown to district staff, never silently dropped and never overwriting the first."""

    __tablename__ = "hub_conflict"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centre.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict] = mapped_column(Document)
    payload_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HubDaily(Base):
    """Per centre, day and event type: how many events and points (kept at ingest, so the
    dashboard sums days instead of scanning events)."""

    __tablename__ = "hub_daily"
    # (type, day, centre_id, events): the chart's attendances per day from the index alone.
    __table_args__ = (PrimaryKeyConstraint("centre_id", "day", "type"), Index("ix_hub_daily_type_day", "type", "day", "centre_id", "events"))

    centre_id: Mapped[int] = mapped_column(ForeignKey("centre.id"))
    day: Mapped[date] = mapped_column(Date)
    type: Mapped[str] = mapped_column(String(40))
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)


class HubMonthly(Base):
    """hub_daily summed by calendar month (kept at ingest): a year's figures read 12 rows per
    centre and type instead of 365."""

    __tablename__ = "hub_monthly"
    __table_args__ = (PrimaryKeyConstraint("centre_id", "month", "type"),)

    centre_id: Mapped[int] = mapped_column(ForeignKey("centre.id"))
    month: Mapped[date] = mapped_column(Date)  # the first of the month
    type: Mapped[str] = mapped_column(String(40))
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)


class HubPeople(Base):
    """Who came in a calendar month or year (hub pseudonyms). ``kind`` "m"/"y": to the centre
    ``scope_id`` itself; "bm"/"by": anywhere in its branch (the centre and everything under
    it), so a person who came to two centres of a sub-district is one row of that sub-district.
    Kept at ingest with HubPeopleCount: the dashboard's distinct people for a month or a year
    without reading hub_person_day. (A centre moved to another parent keeps its old branch
    rows: rebuild with the migration's backfill SQL.)"""

    __tablename__ = "hub_people"
    __table_args__ = (PrimaryKeyConstraint("scope_id", "kind", "start", "person"),)

    scope_id: Mapped[int] = mapped_column(ForeignKey("centre.id"))
    kind: Mapped[str] = mapped_column(String(8))  # m | y | bm | by
    start: Mapped[date] = mapped_column(Date)
    person: Mapped[str] = mapped_column(String(64))


class HubPeopleCount(Base):
    """How many rows HubPeople holds per scope and period (incremented by the rows an ingest
    newly inserted there)."""

    __tablename__ = "hub_people_count"
    __table_args__ = (PrimaryKeyConstraint("scope_id", "kind", "start"),)

    scope_id: Mapped[int] = mapped_column(ForeignKey("centre.id"))
    kind: Mapped[str] = mapped_column(String(8))
    start: Mapped[date] = mapped_column(Date)
    people: Mapped[int] = mapped_column(BigInteger, default=0)


class HubPersonDay(Base):
    """Who came where on which day (hub pseudonyms only): distinct people over any period and
    branch without reading the events."""

    __tablename__ = "hub_person_day"
    __table_args__ = (
        PrimaryKeyConstraint("day", "centre_id", "person"),
        # The rows kiosk.hub.people_days has not filed yet (a new row is not counted).
        Index("ix_hub_person_day_pending", "day", postgresql_where=text("NOT counted"), sqlite_where=text("NOT counted")),
    )

    day: Mapped[date] = mapped_column(Date)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centre.id"))
    person: Mapped[str] = mapped_column(String(64))
    counted: Mapped[bool] = mapped_column(default=False, server_default=false())


# Width of one hub_people_bits row (kiosk.hub.people_days.CHUNK).
PEOPLE_CHUNK = 2048


class HubPersonDayGone(Base):
    """A counted hub_person_day row that was changed or deleted (an erasure relinks a person's
    days to a token), queued by a trigger (PostgreSQL) for kiosk.hub.people_days to take out."""

    __tablename__ = "hub_person_day_gone"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    centre_id: Mapped[int] = mapped_column(Integer)
    person: Mapped[str] = mapped_column(String(64))


class HubPeopleOrdinal(Base):
    """A person's number within one scope of the dashboard (kiosk.hub.people_days): "c<id>" a
    centre itself, "b<id>" its branch, "l<letter><id>" the centres of one level in its branch.
    Numbers are dense per scope (0, 1, 2, …), so a scope's people fill few bit strings."""

    __tablename__ = "hub_people_ordinal"
    __table_args__ = (PrimaryKeyConstraint("scope", "person"), UniqueConstraint("scope", "ordinal"))

    scope: Mapped[str] = mapped_column(String(24))
    person: Mapped[str] = mapped_column(String(64))
    ordinal: Mapped[int] = mapped_column(Integer)


class _PeopleBits:
    """A bit string of chunk ``chunk`` of a scope's people numbers (see HubPeopleBits)."""

    scope: Mapped[str] = mapped_column(String(24))
    chunk: Mapped[int] = mapped_column(Integer)
    bits: Mapped[bytes] = mapped_column(LargeBinary().with_variant(BIT(PEOPLE_CHUNK), "postgresql"))


class HubPeopleBits(_PeopleBits, Base):
    """Who came to a scope on a day: bit ``ordinal % PEOPLE_CHUNK`` of chunk ``ordinal //
    PEOPLE_CHUNK`` is set for each person (hub_people_ordinal). Distinct people over days a..b =
    the sum over chunks of bit_count(bit_or(bits)). PostgreSQL only (a SQLite demo hub counts
    from hub_person_day)."""

    __tablename__ = "hub_people_bits"
    __table_args__ = (PrimaryKeyConstraint("scope", "day", "chunk"),)

    day: Mapped[date] = mapped_column(Date)


class HubPeopleMonthBits(_PeopleBits, Base):
    """hub_people_bits OR-ed over each calendar month (``month`` its first day): a range reads
    its whole months here and only the days before and after them day by day."""

    __tablename__ = "hub_people_month_bits"
    __table_args__ = (PrimaryKeyConstraint("scope", "month", "chunk"),)

    month: Mapped[date] = mapped_column(Date)


class HubPeopleCentre(Base):
    """The scopes a centre's days were filed under (its place in the tree then). When the tree
    has changed since, branch totals come from hub_person_day until people_days.rebuild()."""

    __tablename__ = "hub_people_centre"

    centre_id: Mapped[int] = mapped_column(ForeignKey("centre.id"), primary_key=True)
    scopes: Mapped[str] = mapped_column(Text)


class HubRollupQueue(Base):
    """A pushed batch not yet in the roll-ups (kiosk.hub.rollup): the centre and the range of
    hub_event ids the push inserted. Pushes of one centre are serialised by its hub_centre row,
    so the range holds that push's rows of the centre and no other's (other centres' rows in
    it are told apart by centre_id). Applied and deleted in one transaction."""

    __tablename__ = "hub_rollup_queue"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centre.id"))
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    events: Mapped[int]
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HubPublication(Base):
    """A district activity, notice or reward list published to every centre. ``revision`` grows
    with every change (deletions included), and kiosks pull everything after their cursor."""

    __tablename__ = "hub_publication"
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # activity | notice | reward
    key: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(BigInteger, unique=True)
    deleted: Mapped[bool] = mapped_column(default=False)
    data: Mapped[dict] = mapped_column(Document)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HubRole(enum.StrEnum):
    DISTRICT = "district"  # the whole tree
    SUBDISTRICT = "subdistrict"  # one sub-district centre and everything under it


class HubUser(Base):
    """District staff on the hub (not a kiosk's staff account)."""

    __tablename__ = "hub_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(40), default="")
    role: Mapped[HubRole] = mapped_column(_enum(HubRole))
    # The root of the branch a sub-district admin sees (None for district staff).
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centre.id"))
    active: Mapped[bool] = mapped_column(default=True)
    note: Mapped[str] = mapped_column(Text, default="")

    centre: Mapped[Centre | None] = relationship()
