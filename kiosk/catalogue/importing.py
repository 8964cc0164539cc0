"""Importing a catalogue: CSV / XLSX with Chinese headers, MARC21 and CNMARC (ISO 2709).

read_records() turns a file into Records (one per CSV row or MARC record, numbered from 1);
import_records() writes them in chunks, each chunk one write_transaction that also updates
the ImportBatch's progress, so the kiosk keeps answering between chunks and the upload page
can show how far it got. A bad record (no title, a wrong ISBN, a barcode that belongs to
another book) is reported with its number and reason and the rest go on. The same file
imported again changes nothing: books are matched by ISBN (else title, authors, publisher,
year) and copies by barcode.

The CSV/XLSX template (docs/architecture.md "Catalogue"): 题名, 副题名, 责任者, 出版社, 出版年,
ISBN, 索书号, 主题词, 摘要, 条码号, 馆藏位置 — one row per copy; a book with several copies
repeats its fields on each row. A few common alternatives are read too (书名, 作者, 条码…).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from kiosk.catalogue.models import Book, Copy, CopyStatus, ImportBatch, ImportStatus
from kiosk.catalogue.services import CatalogueError, apply_book, search_columns, source_key_for, validate_book
from kiosk.db import utcnow, write_transaction
from kiosk.i18n import _l
from kiosk.staff.models import StaffUser
from kiosk.staff.services import record_audit

TEMPLATE_HEADERS = ("题名", "副题名", "责任者", "出版社", "出版年", "ISBN", "索书号", "主题词", "摘要", "条码号", "馆藏位置")
_HEADER_KEYS = {
    "title": ("题名", "书名", "正题名", "title"),
    "subtitle": ("副题名", "副书名", "subtitle"),
    "authors": ("责任者", "作者", "著者", "author", "authors"),
    "publisher": ("出版社", "出版者", "publisher"),
    "year": ("出版年", "出版日期", "出版时间", "year"),
    "isbn": ("isbn", "国际标准书号", "书号"),
    "call_number": ("索书号", "分类号", "中图法分类号", "call number", "call_number"),
    "subjects": ("主题词", "主题", "subjects"),
    "summary": ("摘要", "内容简介", "简介", "summary"),
    "barcode": ("条码号", "条码", "登录号", "barcode"),
    "location": ("馆藏位置", "架位", "书架", "排架号", "location", "shelf"),
}
CHUNK = 500
MAX_REPORTED_ERRORS = 500
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
KINDS = ("csv", "xlsx", "marc")


class ImportError_(CatalogueError):
    """The file as a whole cannot be read (bad type, bad header, not MARC)."""


@dataclass
class Record:
    number: int
    data: dict[str, Any]
    copies: list[tuple[str, str]] = field(default_factory=list)  # (barcode, location)
    problem: str | None = None  # set when the record could not even be read


def kind_of(filename: str, head: bytes) -> str:
    """csv, xlsx or marc from the name and the first bytes; ImportError_ if neither."""
    name = filename.lower()
    if head.startswith(b"PK\x03\x04"):
        if name.endswith(".xlsx"):
            return "xlsx"
    elif name.endswith((".csv", ".txt")):
        return "csv"
    elif name.endswith((".mrc", ".marc", ".iso", ".iso2709", ".dat")) and head[:5].isdigit():
        return "marc"
    raise ImportError_("bad_file_type", _l("Please choose a CSV, XLSX or MARC (.mrc / .iso) file."), field="file")


# ---- CSV / XLSX ----


def _columns(header: list[Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        name = str(cell or "").strip().lstrip("\ufeff").lower()
        for key, names in _HEADER_KEYS.items():
            if name in names and key not in found:
                found[key] = index
    if "title" not in found:
        raise ImportError_("no_title_column", _l("The first row must name the columns; a 题名 (title) column is required."), field="file")
    return found


def _rows_to_records(rows: Iterator[list[Any]]) -> Iterator[Record]:
    header = next(rows, None)
    if header is None:
        raise ImportError_("empty_file", _l("The file is empty."), field="file")
    columns = _columns(list(header))
    for number, row in enumerate(rows, start=1):
        if not any(str(c or "").strip() for c in row):
            continue
        data = {key: (row[i] if i < len(row) else None) for key, i in columns.items()}
        if isinstance(data.get("year"), float):
            data["year"] = int(data["year"])
        if isinstance(data.get("isbn"), (int, float)):
            data["isbn"] = str(int(data["isbn"]))
        barcode = str(data.pop("barcode", None) or "").strip()
        location = str(data.pop("location", None) or "").strip()
        yield Record(number, data, [(barcode, location)] if barcode else [])


def _decode_text(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportError_("bad_encoding", _l("The file is neither UTF-8 nor GB18030 text."), field="file")


def read_csv(raw: bytes) -> Iterator[Record]:
    return _rows_to_records(iter(csv.reader(io.StringIO(_decode_text(raw)))))


def read_xlsx(raw: bytes) -> Iterator[Record]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as error:
        raise ImportError_("bad_xlsx", _l("This XLSX file cannot be read."), field="file") from error
    sheet = workbook.worksheets[0]
    return _rows_to_records(list(row) for row in sheet.iter_rows(values_only=True))


# ---- MARC (MARC21 and CNMARC / UNIMARC) ----


def _first(record: Any, tag: str, code: str) -> str:
    for found in record.get_fields(tag):
        for value in found.get_subfields(code):
            if value and value.strip():
                return value.strip()
    return ""


def _all(record: Any, tags: Iterable[str], code: str) -> list[str]:
    values = []
    for found in record.get_fields(*tags):
        values += [v.strip() for v in found.get_subfields(code) if v and v.strip()]
    return list(dict.fromkeys(values))


def _strip_isbd(value: str) -> str:
    return value.strip().rstrip(" /:;,.=").strip()


def _isbn_part(value: str) -> str:
    return value.split("(")[0].split(" ")[0].strip()


def _marc21(record: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    publisher = _first(record, "264", "b") or _first(record, "260", "b")
    year = "".join(ch for ch in (_first(record, "264", "c") or _first(record, "260", "c")) if ch.isdigit())[:4]
    call = _first(record, "084", "a") or _first(record, "090", "a") or _first(record, "852", "h")
    data = {
        "title": _strip_isbd(_first(record, "245", "a")),
        "subtitle": _strip_isbd(_first(record, "245", "b")),
        "authors": "; ".join(_strip_isbd(a) for a in _all(record, ("100", "110", "700"), "a")),
        "publisher": _strip_isbd(publisher),
        "year": year,
        "isbn": _isbn_part(_first(record, "020", "a")),
        "call_number": call,
        "subjects": "; ".join(_strip_isbd(s) for s in _all(record, ("650", "600", "651"), "a")),
        "summary": _first(record, "520", "a"),
    }
    copies = []
    for holding in record.get_fields("852", "952"):
        barcode = (holding.get("p") or "").strip()
        if barcode:
            copies.append((barcode, (holding.get("c") or "").strip()))
    return data, copies


def _cnmarc(record: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """CNMARC (UNIMARC): pymarc's MARC21 shortcuts (record.title …) return None here."""
    authors = _all(record, ("701", "700", "702", "711", "712"), "a")
    copies = []
    call = ""
    for holding in record.get_fields("905"):
        barcode = (holding.get("b") or "").strip()
        number = "/".join(p for p in ((holding.get("d") or "").strip(), (holding.get("e") or "").strip()) if p)
        call = call or number
        if barcode:
            copies.append((barcode, (holding.get("c") or "").strip()))
    data = {
        "title": _first(record, "200", "a"),
        "subtitle": _first(record, "200", "e"),
        "authors": "; ".join(authors) or _first(record, "200", "f"),
        "publisher": _first(record, "210", "c"),
        "year": "".join(ch for ch in _first(record, "210", "d") if ch.isdigit())[:4],
        "isbn": _isbn_part(_first(record, "010", "a")),
        "call_number": call or _first(record, "690", "a"),
        "subjects": "; ".join(_all(record, ("606", "600", "610"), "a")),
        "summary": _first(record, "330", "a"),
    }
    return data, copies


def marc_encoding(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def read_marc(raw: bytes) -> Iterator[Record]:
    from pymarc import MARCReader

    encoding = marc_encoding(raw)
    if encoding == "utf-8":
        reader = MARCReader(io.BytesIO(raw), to_unicode=True, force_utf8=True, utf8_handling="replace")
    else:
        reader = MARCReader(io.BytesIO(raw), to_unicode=True, file_encoding="gb18030", utf8_handling="replace")
    for number, record in enumerate(reader, start=1):
        if record is None:
            yield Record(number, {}, problem=str(_l("This MARC record cannot be read (%(error)s).", error=type(reader.current_exception).__name__)))
            continue
        if record.get_fields("245"):
            data, copies = _marc21(record)
        elif record.get_fields("200"):
            data, copies = _cnmarc(record)
        else:
            yield Record(number, {}, problem=str(_l("No title field (245 or 200).")))
            continue
        yield Record(number, data, copies)


def read_records(raw: bytes, kind: str) -> Iterator[Record]:
    if kind == "csv":
        return read_csv(raw)
    if kind == "xlsx":
        return read_xlsx(raw)
    if kind == "marc":
        return read_marc(raw)
    raise ImportError_("bad_file_type", _l("Please choose a CSV, XLSX or MARC (.mrc / .iso) file."), field="file")


def marc_bytes(record: Any, encoding: str = "utf-8") -> bytes:
    """ISO 2709 bytes of a pymarc record in any encoding (pymarc itself writes UTF-8 or Latin-1
    only, and GB18030 CNMARC files are what Chinese library systems export)."""
    fields = b""
    directory = b""
    for item in record.fields:
        data = item.as_marc(encoding=encoding)
        directory += f"{item.tag:>03}{len(data):04d}{len(fields):05d}".encode("ascii")
        fields += data
    directory += b"\x1e"
    fields += b"\x1d"
    base = 24 + len(directory)
    leader = str(record.leader)
    if encoding == "utf-8":
        leader = leader[:9] + "a" + leader[10:]
    leader = f"{base + len(fields):05d}{leader[5:12]}{base:05d}{leader[17:]}"
    return leader.encode("ascii") + directory + fields


# ---- writing ----


@dataclass
class ImportReport:
    batch_id: int
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    copies: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def start_batch(session: Session, filename: str, kind: str, *, actor: StaffUser | None, remote_addr: str = "", expected: int | None = None) -> int:
    with write_transaction(session):
        batch = ImportBatch(filename=filename[:200], kind=kind, status=ImportStatus.RUNNING, staff_id=actor.id if actor else None, errors=[], expected=expected)
        session.add(batch)
        session.flush()
        record_audit(session, actor, "catalogue.import", target=f"import:{batch.id}", detail=filename[:200], remote_addr=remote_addr)
        batch_id = batch.id
    return batch_id


def _fail(report: ImportReport, number: int, reason: Any) -> None:
    report.failed += 1
    if len(report.errors) < MAX_REPORTED_ERRORS:
        report.errors.append({"record": number, "reason": str(reason)})


def _write_chunk(session: Session, chunk: list[Record], report: ImportReport) -> None:
    """One chunk in the caller's transaction. New books and copies go in as Core bulk inserts
    (the ORM's unit of work was half the time of an import); changed books through the ORM."""
    prepared = []
    for record in chunk:
        report.total += 1
        if record.problem:
            _fail(report, record.number, record.problem)
            continue
        try:
            fields = validate_book(record.data)
        except CatalogueError as error:
            _fail(report, record.number, f"{error.field or ''}: {error.message}".lstrip(": "))
            continue
        prepared.append((record, fields, source_key_for(fields)))
    keys = {key for _, _, key in prepared}
    barcodes = {"".join(b.split()).upper() for record, _, _ in prepared for b, _ in record.copies}
    books = {b.source_key: b for b in session.scalars(select(Book).where(Book.source_key.in_(keys)))} if keys else {}
    # barcode -> [book source key, location, copy id or None]
    copies: dict[str, list] = {}
    if barcodes:
        rows = session.execute(
            select(Copy.barcode, Book.source_key, Copy.location, Copy.id).join(Book, Book.id == Copy.book_id).where(Copy.barcode.in_(barcodes))
        )
        copies = {barcode: [key, location, copy_id] for barcode, key, location, copy_id in rows}
    new_books: dict[str, dict[str, Any]] = {}
    new_copies: list[tuple[str, str, str]] = []  # (book key, barcode, location)
    moved: dict[int, str] = {}
    seen: set[str] = set()
    for record, fields, key in prepared:
        clean = []
        problem = None
        for barcode, location in record.copies:
            code = "".join(barcode.split()).upper()
            if len(code) > 40 or not code.isascii() or not code.isprintable():
                problem = _l("Barcode %(code)s cannot be used.", code=code[:40])
                break
            owner = copies.get(code)
            if owner is not None and owner[0] != key:
                problem = _l("Barcode %(code)s already belongs to another book.", code=code)
                break
            clean.append((code, location.strip().upper()[:40]))
        if problem is not None:
            _fail(report, record.number, problem)
            continue
        if key not in seen:
            seen.add(key)
            if key in books:
                _, outcome = apply_book(session, books[key], fields, key)
            else:
                values = fields.values()
                new_books[key] = {"source_key": key, **values, **search_columns(values)}
                outcome = "created"
            setattr(report, outcome, getattr(report, outcome) + 1)
        for code, location in clean:
            owner = copies.get(code)
            if owner is None:
                copies[code] = [key, location, None]
                new_copies.append((key, code, location))
                report.copies += 1
            elif location and owner[1] != location:
                owner[1] = location
                if owner[2] is not None:
                    moved[owner[2]] = location
    now = utcnow()
    ids = {key: book.id for key, book in books.items()}
    if new_books:
        session.flush()
        rows = [v | {"created_at": now, "updated_at": now, "cover": None} for v in new_books.values()]
        # Table-level insert: one executemany (an ORM insert with RETURNING went row by row).
        session.execute(insert(Book.__table__), rows)
        ids.update({key: book_id for key, book_id in session.execute(select(Book.source_key, Book.id).where(Book.source_key.in_(list(new_books))))})
    if new_copies:
        session.execute(
            insert(Copy.__table__),
            [
                {"book_id": ids[key], "barcode": code, "location": location, "status": CopyStatus.ON_SHELF, "note": "", "created_at": now, "updated_at": now}
                for key, code, location in new_copies
            ],
        )
    for copy_id, location in moved.items():
        session.execute(update(Copy).where(Copy.id == copy_id).values(location=location, updated_at=now))


def import_records(
    session: Session,
    records: Iterable[Record],
    batch_id: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Write records in chunks; each chunk commits with the batch's progress. Never raises for
    a bad record; a file that cannot be read at all ends the batch as failed with the reason."""
    report = ImportReport(batch_id)
    chunk: list[Record] = []

    def flush() -> None:
        before = report.total
        with write_transaction(session):
            _write_chunk(session, chunk, report)
            _save_progress(session, report, ImportStatus.RUNNING)
        if progress is not None:
            progress(report.total - before)
        chunk.clear()

    try:
        for record in records:
            chunk.append(record)
            if len(chunk) >= CHUNK:
                flush()
        if chunk:
            flush()
    except CatalogueError as error:
        with write_transaction(session):
            _save_progress(session, report, ImportStatus.FAILED, str(error.message))
        raise
    with write_transaction(session):
        _save_progress(session, report, ImportStatus.DONE)
    return report


def _save_progress(session: Session, report: ImportReport, status: ImportStatus, message: str = "") -> None:
    batch = session.get(ImportBatch, report.batch_id)
    if batch is None:
        return
    for name in ("total", "created", "updated", "unchanged", "failed", "copies"):
        setattr(batch, name, getattr(report, name))
    batch.errors = list(report.errors)
    batch.status = status
    batch.message = message[:300]
    if status != ImportStatus.RUNNING:
        batch.finished_at = utcnow()


def import_file(
    session: Session,
    path: Path,
    *,
    actor: StaffUser | None = None,
    progress: Callable[[int], None] | None = None,
    batch_id: int | None = None,
    filename: str | None = None,
) -> ImportReport:
    """Import one file (the command line and the upload page both come here)."""
    raw = path.read_bytes()
    name = filename or path.name
    kind = kind_of(name, raw[:8])
    if batch_id is None:
        batch_id = start_batch(session, name, kind, actor=actor)
    try:
        records = read_records(raw, kind)
    except CatalogueError as error:
        with write_transaction(session):
            _save_progress(session, ImportReport(batch_id), ImportStatus.FAILED, str(error.message))
        raise
    return import_records(session, records, batch_id, progress=progress)


def count_records(raw: bytes, kind: str) -> int | None:
    """How many records a file holds, for a progress bar (cheap for MARC and CSV)."""
    if kind == "marc":
        return raw.count(b"\x1d")
    if kind == "csv":
        try:
            return max(0, _decode_text(raw).count("\n") - 1) or None
        except CatalogueError:
            return None
    return None


def recent_batches(session: Session, limit: int = 50) -> list[ImportBatch]:
    return list(session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)))


def get_batch(session: Session, batch_id: Any) -> ImportBatch:
    try:
        batch = session.get(ImportBatch, int(batch_id))
    except (TypeError, ValueError):
        batch = None
    if batch is None:
        raise CatalogueError("unknown_import", _l("There is no such import."), status=404)
    return batch


def template_csv() -> bytes:
    example = ["红楼梦", "", "曹雪芹, 高鹗", "人民文学出版社", "1996", "978-7-02-000220-7", "I242.4/12", "章回小说", "", "T0000001", "A-03-2"]
    buffer = io.StringIO()
    buffer.write("\ufeff")
    csv.writer(buffer).writerows([list(TEMPLATE_HEADERS), example])
    return buffer.getvalue().encode("utf-8")


def fail_batch(session: Session, batch_id: int, message: str) -> None:
    with write_transaction(session):
        batch = session.get(ImportBatch, batch_id)
        if batch is not None and batch.status == ImportStatus.RUNNING:
            batch.status = ImportStatus.FAILED
            batch.message = message[:300]
            batch.finished_at = utcnow()
