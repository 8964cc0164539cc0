"""Books, copies, loans, curated shelves and import batches of the reading hall.

The search index is three SQLite FTS5 tables kept in step with ``book`` by triggers (created
in the migrations ``0006_catalogue`` and ``0010_title_fts``, not here: SQLAlchemy has no FTS5 type):

- ``book_fts`` (trigram) over search_title, search_text, pinyin_title, pinyin_other: queries of
  3+ characters;
- ``book_title_fts`` (trigram) over search_title, pinyin_title only: the title tier of those
  queries, so that its count reads title doclists only (a column filter on ``book_fts`` still
  walks every column's hits);
- ``book_chars`` (unicode61, one token per character) over chars_title, chars_text: 1–2 character queries,
  which a trigram index cannot answer (on SQLite 3.40 a LIKE against it silently finds nothing).

The search_* columns are written by the services from kiosk.catalogue.text (folded, pinyin).
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiosk.db import Base, UTCDateTime, utcnow

# The FTS5 virtual tables of this feature (and their shadow tables): the models-vs-migrations
# comparison skips these names (kiosk.db.include_object).
FTS_TABLES = ("book_fts", "book_chars", "book_title_fts")


class CopyStatus(enum.StrEnum):
    ON_SHELF = "on_shelf"
    ON_LOAN = "on_loan"
    MISSING = "missing"


class ImportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def _enum(cls: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class Book(Base):
    __tablename__ = "book"
    __table_args__ = (
        Index("ix_book_search_title", "search_title"),
        Index("ix_book_pinyin_initials", "pinyin_initials"),
        Index("ix_book_pinyin_full", "pinyin_full", "pinyin_initials"),  # covering: the prefix tiers count in the index
        Index("ix_book_clc_class_id", "clc_class", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    subtitle: Mapped[str] = mapped_column(String(200), default="")
    authors: Mapped[str] = mapped_column(String(300), default="")
    publisher: Mapped[str] = mapped_column(String(120), default="")
    year: Mapped[int | None] = mapped_column()
    # Normalised ISBN-13 (ISBN-10 input is converted); several books may lack one.
    isbn: Mapped[str | None] = mapped_column(String(13), index=True)
    # 中图法 call number (e.g. I242.4/12) and its top class letter (I).
    call_number: Mapped[str] = mapped_column(String(60), default="")
    clc_class: Mapped[str] = mapped_column(String(1), default="")
    subjects: Mapped[str] = mapped_column(String(300), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    cover: Mapped[str | None] = mapped_column(String(80))  # file name under instance/covers
    # What a re-import recognises the record by (isbn:…, marc:…, row:title|author|publisher).
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    # Search columns (kiosk.catalogue.text): folded text, pinyin, per-character tokens.
    search_title: Mapped[str] = mapped_column(String(400), default="")
    search_text: Mapped[str] = mapped_column(Text, default="")
    pinyin_title: Mapped[str] = mapped_column(Text, default="")  # full + initials of the title
    pinyin_other: Mapped[str] = mapped_column(Text, default="")  # full + initials of the authors
    pinyin_initials: Mapped[str] = mapped_column(String(200), default="")
    pinyin_full: Mapped[str] = mapped_column(String(800), default="")
    chars_title: Mapped[str] = mapped_column(Text, default="")  # search_title, one token a character
    chars_text: Mapped[str] = mapped_column(Text, default="")  # search_text, likewise
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    copies: Mapped[list[Copy]] = relationship(back_populates="book", order_by="Copy.barcode", cascade="all, delete-orphan")


class Copy(Base):
    __tablename__ = "book_copy"

    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("book.id", ondelete="CASCADE"), index=True)
    barcode: Mapped[str] = mapped_column(String(40), unique=True)
    # Where it stands: a shelf code such as A-03-2 (row A, bay 3, level 2).
    location: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[CopyStatus] = mapped_column(_enum(CopyStatus), default=CopyStatus.ON_SHELF)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    book: Mapped[Book] = relationship(back_populates="copies")


class Loan(Base):
    """A copy lent at the desk. Open while returned_at is empty; one open loan per copy."""

    __tablename__ = "book_loan"
    __table_args__ = (Index("ix_book_loan_open_copy", "copy_id", "open_marker", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    copy_id: Mapped[int] = mapped_column(ForeignKey("book_copy.id", ondelete="CASCADE"))
    # NULL once the retention period has passed (kiosk.privacy_rights.purge_expired).
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    borrowed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_date: Mapped[date] = mapped_column(index=True)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # 1 while open, NULL once returned: the unique index then allows one open loan per copy.
    open_marker: Mapped[int | None] = mapped_column(default=1)

    copy: Mapped[Copy] = relationship()


class Shelf(Base):
    """A staff-curated shelf on the kiosk (红色书架, 少儿读物)."""

    __tablename__ = "book_shelf"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ShelfBook(Base):
    __tablename__ = "book_shelf_item"
    __table_args__ = (UniqueConstraint("shelf_id", "book_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("book_shelf.id", ondelete="CASCADE"), index=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("book.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)


class ImportBatch(Base):
    """One import of a file (command line or upload): progress while it runs, then the report."""

    __tablename__ = "book_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # csv, xlsx, marc21, cnmarc
    status: Mapped[ImportStatus] = mapped_column(_enum(ImportStatus), default=ImportStatus.QUEUED)
    total: Mapped[int] = mapped_column(default=0)  # records read so far (all of them once done)
    expected: Mapped[int | None] = mapped_column()  # records in the file, when cheap to count
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    copies: Mapped[int] = mapped_column(default=0)
    # [{"record": n, "reason": "..."}], at most MAX_REPORTED_ERRORS of them.
    errors: Mapped[list] = mapped_column(JSON, default=list)
    message: Mapped[str] = mapped_column(String(300), default="")
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
