"""Reading-hall services: books and copies, their search columns, loans at the desk, figures.

Every write runs in write_transaction (BEGIN IMMEDIATE, commit or roll back here, never in a
view); refusals are CatalogueError with a code, a lazy Chinese-first message, a status and
the form field they belong to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.catalogue.models import Book, Copy, CopyStatus, Loan, Shelf, ShelfBook
from kiosk.catalogue.text import FIELD_BREAK, fold, isbn10, isbn13, pinyin_many, pinyin_of, spaced
from kiosk.db import utcnow, write_transaction
from kiosk.errors import KioskError
from kiosk.i18n import _l
from kiosk.members.models import Member
from kiosk.staff.models import StaffUser
from kiosk.staff.services import record_audit
from kiosk.sync.models import OutboxEvent
from kiosk.sync.outbox import record_event
from kiosk.validation import clean_text

LOAN_DAYS = 30
MAX_LOAN_DAYS = 120

# 中图法 (Chinese Library Classification) top classes.
CLC_CLASSES: dict[str, str] = {
    "A": "马克思主义、列宁主义、毛泽东思想、邓小平理论",
    "B": "哲学、宗教",
    "C": "社会科学总论",
    "D": "政治、法律",
    "E": "军事",
    "F": "经济",
    "G": "文化、科学、教育、体育",
    "H": "语言、文字",
    "I": "文学",
    "J": "艺术",
    "K": "历史、地理",
    "N": "自然科学总论",
    "O": "数理科学和化学",
    "P": "天文学、地球科学",
    "Q": "生物科学",
    "R": "医药、卫生",
    "S": "农业科学",
    "T": "工业技术",
    "U": "交通运输",
    "V": "航空、航天",
    "X": "环境科学、安全科学",
    "Z": "综合性图书",
}


class CatalogueError(KioskError):
    pass


class LoanError(CatalogueError):
    pass


# ---- book fields and search columns ----


@dataclass
class BookFields:
    title: str
    subtitle: str = ""
    authors: str = ""
    publisher: str = ""
    year: int | None = None
    isbn: str | None = None
    call_number: str = ""
    subjects: str = ""
    summary: str = ""

    def values(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "subtitle": self.subtitle,
            "authors": self.authors,
            "publisher": self.publisher,
            "year": self.year,
            "isbn": self.isbn,
            "call_number": self.call_number,
            "clc_class": clc_class_of(self.call_number),
            "subjects": self.subjects,
            "summary": self.summary,
        }


def clc_class_of(call_number: str) -> str:
    letter = (call_number or "")[:1].upper()
    return letter if letter in CLC_CLASSES else ""


def _text(raw: Any, limit: int, name: str, *, required: bool = False) -> str:
    return clean_text(None if raw is None else str(raw), limit, name, error=CatalogueError, required=required)


def validate_book(data: Mapping[str, Any]) -> BookFields:
    """Book fields from a form or an import row; CatalogueError names the first bad field."""
    raw_isbn = _text(data.get("isbn"), 40, "isbn")
    isbn = None
    if raw_isbn:
        isbn = isbn13(raw_isbn)
        if isbn is None:
            raise CatalogueError("isbn_invalid", _l("This ISBN is not valid (check the digits)."), field="isbn")
    raw_year = _text(data.get("year"), 10, "year")
    year = None
    if raw_year:
        digits = raw_year[:4]
        if not (digits.isascii() and digits.isdigit() and 1000 <= int(digits) <= 2100):
            raise CatalogueError("year_invalid", _l("Please enter a year such as 2019."), field="year")
        year = int(digits)
    return BookFields(
        title=_text(data.get("title"), 200, "title", required=True),
        subtitle=_text(data.get("subtitle"), 200, "subtitle"),
        authors=_text(data.get("authors"), 300, "authors"),
        publisher=_text(data.get("publisher"), 120, "publisher"),
        year=year,
        isbn=isbn,
        call_number=_text(data.get("call_number"), 60, "call_number"),
        subjects=_text(data.get("subjects"), 300, "subjects"),
        summary=clean_text(str(data.get("summary") or ""), 4000, "summary", error=CatalogueError) if data.get("summary") else "",
    )


Pinyin = Mapping[str, tuple[str, str]]


def search_columns(values: Mapping[str, Any], pinyin: Pinyin | None = None) -> dict[str, str]:
    """The folded text, pinyin and per-character columns the FTS5 triggers index. ``pinyin``:
    the (full, initials) of folded texts already known (else pinyin_of computes them)."""

    def pinyin_of_(folded: str) -> tuple[str, str]:
        return pinyin[folded] if pinyin is not None and folded in pinyin else pinyin_of(folded)

    title = fold(values["title"])
    authors = fold(values.get("authors"))
    others = [fold(values.get("subtitle")), authors, fold(values.get("publisher")), fold(values.get("subjects"))]
    isbn = values.get("isbn")
    if isbn:
        others += [isbn, (isbn10(isbn) or "").lower()]
    others = [o for o in others if o]
    title_full, title_initials = pinyin_of_(title)
    author_full, author_initials = pinyin_of_(authors)
    return {
        "search_title": title,
        "search_text": FIELD_BREAK.join(others),
        "pinyin_title": FIELD_BREAK.join(p for p in (title_full, title_initials) if p),
        "pinyin_other": FIELD_BREAK.join(p for p in (author_full, author_initials) if p),
        "pinyin_full": title_full[:800],
        "pinyin_initials": title_initials[:200],
        "chars_title": spaced(title),
        "chars_text": spaced(*others),
    }


def source_key_for(fields: BookFields, explicit: str | None = None) -> str:
    """What identifies a record across re-imports: the file's own id, else the ISBN, else
    title, authors and publisher."""
    if explicit:
        return explicit[:200]
    if fields.isbn:
        return f"isbn:{fields.isbn}"
    return f"t:{fold(fields.title)}|{fold(fields.authors)}|{fold(fields.publisher)}"[:200]


def apply_book(session: Session, book: Book | None, fields: BookFields, source_key: str, pinyin: Pinyin | None = None) -> tuple[Book, str]:
    """Create or update a book inside the caller's transaction: (book, created|updated|unchanged)."""
    values = fields.values()
    if book is None:
        book = Book(source_key=source_key, **values, **search_columns(values, pinyin))
        session.add(book)
        return book, "created"
    if all(getattr(book, k) == v for k, v in values.items()):
        return book, "unchanged"
    for key, value in (values | search_columns(values, pinyin)).items():
        setattr(book, key, value)
    return book, "updated"


def _stored_pinyin(book: Book) -> dict[str, tuple[str, str]]:
    """The pinyin a book already has, by folded text (pinyin_title / pinyin_other hold full
    and initials, FIELD_BREAK between them, or nothing when the text has no pinyin)."""
    known: dict[str, tuple[str, str]] = {}
    for raw, stored in ((book.title, book.pinyin_title), (book.authors, book.pinyin_other)):
        parts = stored.split(FIELD_BREAK) if stored else ["", ""]
        if len(parts) == 2:
            known[fold(raw)] = (parts[0], parts[1])
    return known


def edit_pinyin(session: Session, book_id: int | None, fields: BookFields) -> dict[str, tuple[str, str]]:
    """The pinyin a staff edit needs, without loading pypinyin into the server: what the book
    already has for an unchanged title or author, the rest from a child process
    (kiosk.catalogue.text.pinyin_many). Read before the write transaction, so the database
    is not locked while the child runs."""
    book = session.get(Book, book_id) if book_id else None
    known = _stored_pinyin(book) if book is not None else {}
    missing = [t for t in dict.fromkeys((fold(fields.title), fold(fields.authors))) if t not in known]
    if missing:
        known |= dict(zip(missing, pinyin_many(missing)))
    return known


def save_book(session: Session, book_id: int | None, data: Mapping[str, Any], *, actor: StaffUser | None, remote_addr: str = "") -> int:
    """A staff edit (or a new book). Returns the book id."""
    fields = validate_book(data)
    pinyin = edit_pinyin(session, book_id, fields)
    with write_transaction(session):
        book = get_book(session, book_id) if book_id else None
        key = book.source_key if book is not None else source_key_for(fields)
        if book is None and session.scalar(select(Book.id).where(Book.source_key == key)) is not None:
            raise CatalogueError("duplicate_book", _l("This book is already in the catalogue."), field="isbn" if fields.isbn else "title", status=409)
        book, outcome = apply_book(session, book, fields, key, pinyin)
        session.flush()
        record_audit(session, actor, f"catalogue.book_{outcome}", target=f"book:{book.id}", remote_addr=remote_addr)
        book_id = book.id
    return book_id


def get_book(session: Session, book_id: Any) -> Book:
    try:
        book = session.get(Book, int(book_id))
    except (TypeError, ValueError):
        book = None
    if book is None:
        raise CatalogueError("unknown_book", _l("This book is not in the catalogue."), status=404)
    return book


def set_cover(session: Session, book_id: int, data: bytes, covers: Path, *, actor: StaffUser | None, remote_addr: str = "") -> str:
    """A cover photo for a book: re-encoded as a small JPEG under ``covers`` (the instance's
    covers folder); the file name is content-addressed, so a browser never shows an old one."""
    from kiosk.points.services import PointsError, normalise_picture

    try:
        jpeg, _ = normalise_picture(data)
    except PointsError as error:
        raise CatalogueError(error.code, error.message, field="cover") from None
    name = f"book-{int(book_id)}-{hashlib.sha256(jpeg).hexdigest()[:12]}.jpg"
    with write_transaction(session):
        book = get_book(session, book_id)
        covers.mkdir(parents=True, exist_ok=True)
        (covers / name).write_bytes(jpeg)
        old, book.cover = book.cover, name
        record_audit(session, actor, "catalogue.cover", target=f"book:{book.id}", remote_addr=remote_addr)
    if old and old != name:
        (covers / old).unlink(missing_ok=True)
    return name


# ---- the reading room's shelf map ----

SHELF_MAP_SIZE = 1600  # px, the longer side: a floor plan must stay legible on a portrait screen
SHELF_MAP_PREFIX = "shelf-map-"


def normalise_shelf_map(data: bytes) -> bytes:
    """A photo or drawing of the room: checked as the reward and activity pictures are (at most
    2 MB and 4096 × 4096 pixels, JPEG, PNG or WebP, the pixel count read from the header before
    decoding), re-encoded as a JPEG up to SHELF_MAP_SIZE."""
    from kiosk.points.services import normalise_picture

    return normalise_picture(data, size=SHELF_MAP_SIZE, error=CatalogueError)[0]


def shelf_map_name(folder: Path) -> str | None:
    """The current shelf map's file name under ``folder`` (instance/catalogue), if any."""
    names = sorted(folder.glob(SHELF_MAP_PREFIX + "*.jpg"), key=lambda p: (p.stat().st_mtime_ns, p.name)) if folder.is_dir() else []
    return names[-1].name if names else None


def set_shelf_map(session: Session, data: bytes, folder: Path, *, actor: StaffUser | None, remote_addr: str = "") -> str:
    """Staff upload the reading room's shelf map: re-encoded, stored under the instance folder
    with a content-addressed name (a kiosk never shows a stale one), the old one removed."""
    import os

    jpeg = normalise_shelf_map(data)
    name = f"{SHELF_MAP_PREFIX}{hashlib.sha256(jpeg).hexdigest()[:12]}.jpg"
    with write_transaction(session):
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / (name + ".part")
        partial.write_bytes(jpeg)
        os.replace(partial, folder / name)
        os.utime(folder / name)  # the newest is the current one, also when re-uploaded
        record_audit(session, actor, "catalogue.shelf_map", detail=name, remote_addr=remote_addr)
    for old in folder.glob(SHELF_MAP_PREFIX + "*.jpg"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return name


def remove_shelf_map(session: Session, folder: Path, *, actor: StaffUser | None, remote_addr: str = "") -> None:
    with write_transaction(session):
        record_audit(session, actor, "catalogue.shelf_map_removed", remote_addr=remote_addr)
    for old in folder.glob(SHELF_MAP_PREFIX + "*.jpg") if folder.is_dir() else ():
        old.unlink(missing_ok=True)


# ---- copies ----


def _barcode(raw: Any) -> str:
    code = "".join(str(raw or "").split()).upper()
    if not code:
        raise CatalogueError("barcode_required", _l("Please scan or type the barcode."), field="barcode")
    if len(code) > 40 or not code.isascii() or not code.isprintable():
        raise CatalogueError("barcode_invalid", _l("This barcode cannot be used."), field="barcode")
    return code


def save_copy(
    session: Session,
    book_id: int,
    copy_id: int | None,
    *,
    barcode: Any,
    location: Any,
    note: Any = "",
    actor: StaffUser | None,
    remote_addr: str = "",
) -> int:
    code = _barcode(barcode)
    place = _text(location, 40, "location").upper()
    remark = _text(note, 200, "note")
    with write_transaction(session):
        book = get_book(session, book_id)
        copy = get_copy(session, copy_id) if copy_id else None
        other = session.scalar(select(Copy).where(Copy.barcode == code))
        if other is not None and other is not copy:
            raise CatalogueError("duplicate_barcode", _l("Another copy already has this barcode."), field="barcode", status=409)
        if copy is None:
            copy = Copy(book_id=book.id)
            session.add(copy)
        copy.barcode, copy.location, copy.note = code, place, remark
        session.flush()
        record_audit(session, actor, "catalogue.copy_saved", target=f"copy:{copy.id}", detail=f"book={book.id} barcode={code}", remote_addr=remote_addr)
        result = copy.id
    return result


def get_copy(session: Session, copy_id: Any) -> Copy:
    try:
        copy = session.get(Copy, int(copy_id))
    except (TypeError, ValueError):
        copy = None
    if copy is None:
        raise CatalogueError("unknown_copy", _l("There is no such copy."), status=404)
    return copy


def set_copy_missing(session: Session, copy_id: int, missing: bool, *, actor: StaffUser | None, remote_addr: str = "") -> None:
    with write_transaction(session):
        copy = get_copy(session, copy_id)
        if copy.status == CopyStatus.ON_LOAN:
            raise CatalogueError("copy_on_loan", _l("This copy is on loan: return it first."), status=409)
        copy.status = CopyStatus.MISSING if missing else CopyStatus.ON_SHELF
        record_audit(session, actor, "catalogue.copy_missing" if missing else "catalogue.copy_found", target=f"copy:{copy.id}", remote_addr=remote_addr)


# ---- loans at the desk ----


@dataclass(frozen=True)
class LoanResult:
    loan_id: int
    title: str
    barcode: str
    member_name: str
    due_date: date | None


def _copy_by_barcode(session: Session, barcode: Any) -> Copy:
    code = _barcode(barcode)
    copy = session.scalar(select(Copy).where(Copy.barcode == code))
    if copy is None:
        raise LoanError("unknown_barcode", _l("No copy has this barcode."), field="barcode", status=404)
    return copy


def lend(
    session: Session,
    member: Member,
    barcode: Any,
    *,
    zone: ZoneInfo,
    days: int = LOAN_DAYS,
    now: datetime | None = None,
    staff: StaffUser | None,
    remote_addr: str = "",
) -> LoanResult:
    now = now or utcnow()
    if not 1 <= days <= MAX_LOAN_DAYS:
        raise LoanError("days_out_of_range", _l("A loan lasts 1 to %(n)d days.", n=MAX_LOAN_DAYS), field="days")
    with write_transaction(session):
        member = session.get(Member, member.id) or member
        if not member.active:
            raise LoanError("member_inactive", _l("This membership is not active."), status=403)
        copy = _copy_by_barcode(session, barcode)
        if copy.status == CopyStatus.ON_LOAN:
            raise LoanError("already_on_loan", _l("This copy is already on loan. Return it first."), field="barcode", status=409)
        if copy.status == CopyStatus.MISSING:
            raise LoanError("copy_missing", _l("This copy is marked missing. Mark it found first."), field="barcode", status=409)
        due = now.astimezone(zone).date() + timedelta(days=days)
        loan = Loan(copy_id=copy.id, member_id=member.id, borrowed_at=now, due_date=due)
        copy.status = CopyStatus.ON_LOAN
        session.add(loan)
        session.flush()
        record_event(session, "catalogue.loan", {"on": now.astimezone(zone).date().isoformat(), "clc_class": copy.book.clc_class}, occurred_at=now)
        record_audit(session, staff, "catalogue.lend", target=f"copy:{copy.id}", detail=f"loan={loan.id}", remote_addr=remote_addr)
        result = LoanResult(loan.id, copy.book.title, copy.barcode, member.name, due)
    return result


def give_back(session: Session, barcode: Any, *, zone: ZoneInfo, now: datetime | None = None, staff: StaffUser | None, remote_addr: str = "") -> LoanResult:
    now = now or utcnow()
    with write_transaction(session):
        copy = _copy_by_barcode(session, barcode)
        loan = session.scalar(select(Loan).where(Loan.copy_id == copy.id, Loan.returned_at.is_(None)))
        if loan is None:
            raise LoanError("not_on_loan", _l("This copy is not on loan."), field="barcode", status=409)
        loan.returned_at = now
        loan.open_marker = None
        copy.status = CopyStatus.ON_SHELF
        member = session.get(Member, loan.member_id)
        record_event(session, "catalogue.return", {"on": now.astimezone(zone).date().isoformat(), "late": now.astimezone(zone).date() > loan.due_date})
        record_audit(session, staff, "catalogue.return", target=f"copy:{copy.id}", detail=f"loan={loan.id}", remote_addr=remote_addr)
        result = LoanResult(loan.id, copy.book.title, copy.barcode, member.name if member else "", None)
    return result


@dataclass(frozen=True)
class LoanRow:
    loan_id: int
    title: str
    barcode: str
    member_id: int
    member_name: str
    borrowed_at: datetime
    due_date: date
    overdue_days: int


def open_loans(session: Session, today: date, *, overdue_only: bool = False, member_id: int | None = None, limit: int = 500) -> list[LoanRow]:
    statement = (
        select(Loan, Copy, Book, Member)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Book, Book.id == Copy.book_id)
        .join(Member, Member.id == Loan.member_id)
        .where(Loan.returned_at.is_(None))
        .order_by(Loan.due_date, Loan.id)
        .limit(limit)
    )
    if overdue_only:
        statement = statement.where(Loan.due_date < today)
    if member_id is not None:
        statement = statement.where(Loan.member_id == member_id)
    return [
        LoanRow(loan.id, book.title, copy.barcode, member.id, member.name, loan.borrowed_at, loan.due_date, max(0, (today - loan.due_date).days))
        for loan, copy, book, member in session.execute(statement)
    ]


# ---- browse and the book page ----


def clc_counts(session: Session) -> dict[str, int]:
    return {letter: int(n) for letter, n in session.execute(select(Book.clc_class, func.count()).group_by(Book.clc_class))}


def book_ids_in_class(session: Session, letter: str, page: int, page_size: int) -> tuple[list[int], int]:
    total = session.scalar(select(func.count()).select_from(Book).where(Book.clc_class == letter)) or 0
    ids = session.scalars(select(Book.id).where(Book.clc_class == letter).order_by(Book.id.desc()).offset((page - 1) * page_size).limit(page_size))
    return list(ids), int(total)


def new_arrival_ids(session: Session, limit: int = 24) -> list[int]:
    return list(session.scalars(select(Book.id).order_by(Book.created_at.desc(), Book.id.desc()).limit(limit)))


def shelves(session: Session) -> list[Shelf]:
    return list(session.scalars(select(Shelf).order_by(Shelf.position, Shelf.id)))


def shelf_book_ids(session: Session, shelf_id: int) -> list[int]:
    return list(session.scalars(select(ShelfBook.book_id).where(ShelfBook.shelf_id == shelf_id).order_by(ShelfBook.position, ShelfBook.id)))


def get_shelf(session: Session, shelf_id: Any) -> Shelf:
    try:
        shelf = session.get(Shelf, int(shelf_id))
    except (TypeError, ValueError):
        shelf = None
    if shelf is None:
        raise CatalogueError("unknown_shelf", _l("There is no such shelf."), status=404)
    return shelf


def save_shelf(
    session: Session, shelf_id: int | None, *, name: Any, description: Any, isbns_or_ids: Any, actor: StaffUser | None, remote_addr: str = ""
) -> int:
    """A curated shelf: its name and its books (one ISBN or book number a line)."""
    title = _text(name, 40, "name", required=True)
    about = _text(description, 200, "description")
    book_ids: list[int] = []
    for line in str(isbns_or_ids or "").split():
        isbn = isbn13(line)
        book_id = None
        if isbn:
            book_id = session.scalar(select(Book.id).where(Book.isbn == isbn).limit(1))
        elif line.isascii() and line.isdigit() and len(line) < 10:
            book_id = session.scalar(select(Book.id).where(Book.id == int(line)))
        if book_id is None:
            raise CatalogueError("unknown_book_line", _l("Not found in the catalogue: %(line)s", line=line[:40]), field="books")
        if book_id not in book_ids:
            book_ids.append(book_id)
    with write_transaction(session):
        shelf = get_shelf(session, shelf_id) if shelf_id else None
        clash = session.scalar(select(Shelf).where(Shelf.name == title))
        if clash is not None and clash is not shelf:
            raise CatalogueError("duplicate_shelf", _l("A shelf with this name exists."), field="name", status=409)
        if shelf is None:
            shelf = Shelf(name=title, position=(session.scalar(select(func.max(Shelf.position))) or 0) + 1)
            session.add(shelf)
        shelf.name, shelf.description = title, about
        session.flush()
        session.query(ShelfBook).filter(ShelfBook.shelf_id == shelf.id).delete()
        for position, book_id in enumerate(book_ids):
            session.add(ShelfBook(shelf_id=shelf.id, book_id=book_id, position=position))
        record_audit(session, actor, "catalogue.shelf_saved", target=f"shelf:{shelf.id}", detail=f"books={len(book_ids)}", remote_addr=remote_addr)
        result = shelf.id
    return result


# ---- figures and district counts ----


@dataclass(frozen=True)
class CatalogueFigures:
    titles: int
    copies: int
    on_loan: int
    overdue: int
    missing: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def figures(session: Session, today: date) -> CatalogueFigures:
    titles = session.scalar(select(func.count()).select_from(Book)) or 0
    by_status = {status: int(n) for status, n in session.execute(select(Copy.status, func.count()).group_by(Copy.status))}
    overdue = session.scalar(select(func.count()).select_from(Loan).where(Loan.returned_at.is_(None), Loan.due_date < today)) or 0
    return CatalogueFigures(
        titles=int(titles),
        copies=int(sum(by_status.values())),
        on_loan=int(by_status.get(CopyStatus.ON_LOAN, 0)),
        overdue=int(overdue),
        missing=int(by_status.get(CopyStatus.MISSING, 0)),
        by_status={str(k): int(v) for k, v in by_status.items()},
    )


def record_daily_counts(session: Session, day: date | None = None, zone: ZoneInfo | None = None, *, now: datetime | None = None) -> bool:
    """The district's daily figures (no personal data): titles, copies, loans, returns that day.

    Safe for a nightly job, or a hook run before every sync: without ``day`` it records
    yesterday in the centre's time zone (the last finished day), and a day already in the
    outbox is not recorded again (returns False). The check and the event are one unit of
    work under the write lock, so two callers at once record the day once. ``zone`` defaults
    to the app's TIMEZONE."""
    if zone is None:
        from flask import current_app

        zone = ZoneInfo(current_app.config["TIMEZONE"])
    if day is None:
        day = (now or utcnow()).astimezone(zone).date() - timedelta(days=1)
    start = datetime.combine(day, datetime.min.time(), zone)
    end = start + timedelta(days=1)
    with write_transaction(session):
        recorded = session.scalar(
            select(OutboxEvent.id).where(OutboxEvent.type == "catalogue.daily", OutboxEvent.payload["day"].as_string() == day.isoformat()).limit(1)
        )
        if recorded is not None:
            return False
        loans = session.scalar(select(func.count()).select_from(Loan).where(Loan.borrowed_at >= start, Loan.borrowed_at < end)) or 0
        returns = session.scalar(select(func.count()).select_from(Loan).where(Loan.returned_at >= start, Loan.returned_at < end)) or 0
        current = figures(session, day)
        record_event(
            session,
            "catalogue.daily",
            {
                "day": day.isoformat(),
                "titles": current.titles,
                "copies": current.copies,
                "loans": int(loans),
                "returns": int(returns),
                "on_loan": current.on_loan,
            },
        )
    return True


def export_rows(session: Session, *, actor: StaffUser | None, remote_addr: str = "") -> list[list[Any]]:
    """The whole catalogue, one row per copy (books without copies get one row), with the
    import template's Chinese headers, so an export can be imported again. Audited."""
    from kiosk.catalogue.importing import TEMPLATE_HEADERS

    rows: list[list[Any]] = [list(TEMPLATE_HEADERS)]
    books = session.scalars(select(Book).order_by(Book.id))
    copies: dict[int, list[Copy]] = {}
    for copy in session.scalars(select(Copy).order_by(Copy.book_id, Copy.barcode)):
        copies.setdefault(copy.book_id, []).append(copy)
    for book in books:
        base = [book.title, book.subtitle, book.authors, book.publisher, book.year or "", book.isbn or "", book.call_number, book.subjects, book.summary]
        for copy in copies.get(book.id) or [None]:  # type: ignore[list-item]
            rows.append(base + ([copy.barcode, copy.location] if copy is not None else ["", ""]))
    with write_transaction(session):
        record_audit(session, actor, "catalogue.export", detail=f"rows={len(rows) - 1}", remote_addr=remote_addr)
    return rows


def book_copies(session: Session, book_id: int) -> list[Copy]:
    return list(session.scalars(select(Copy).where(Copy.book_id == book_id).order_by(Copy.location, Copy.barcode)))


def due_dates(session: Session, copy_ids: Iterable[int]) -> dict[int, date]:
    ids = list(copy_ids)
    if not ids:
        return {}
    return {copy_id: due for copy_id, due in session.execute(select(Loan.copy_id, Loan.due_date).where(Loan.copy_id.in_(ids), Loan.returned_at.is_(None)))}
