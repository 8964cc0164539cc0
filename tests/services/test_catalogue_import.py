"""Catalogue import: MARC21 and CNMARC (UTF-8 and GB18030) written with pymarc, CSV/XLSX with
bad rows, re-import, the command line."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from pymarc import Field, Indicators, Leader, Record, Subfield
from sqlalchemy import func, select

from kiosk.catalogue import search
from kiosk.catalogue.importing import TEMPLATE_HEADERS, import_file, marc_bytes
from kiosk.catalogue.models import Book, Copy, ImportBatch, ImportStatus
from kiosk.catalogue.services import CatalogueError


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def cnmarc(title, isbn, author, publisher, year, clc, holdings, subtitle="", responsibility=""):
    record = Record(leader=Leader("00000nam0 2200000   450 "))
    record.add_field(Field(tag="001", data=f"CN{isbn}"))
    record.add_field(Field(tag="010", indicators=Indicators(" ", " "), subfields=[Subfield("a", isbn), Subfield("d", "CNY59.70")]))
    record.add_field(
        Field(tag="200", indicators=Indicators("1", " "), subfields=[Subfield("a", title), Subfield("e", subtitle), Subfield("f", responsibility or author)])
    )
    record.add_field(Field(tag="210", indicators=Indicators(" ", " "), subfields=[Subfield("a", "北京"), Subfield("c", publisher), Subfield("d", year)]))
    record.add_field(Field(tag="690", indicators=Indicators(" ", " "), subfields=[Subfield("a", clc), Subfield("v", "5")]))
    record.add_field(Field(tag="701", indicators=Indicators(" ", "0"), subfields=[Subfield("a", author), Subfield("4", "著")]))
    for barcode, location, call in holdings:
        record.add_field(
            Field(
                tag="905",
                indicators=Indicators(" ", " "),
                subfields=[Subfield("a", "XH01"), Subfield("b", barcode), Subfield("c", location), Subfield("d", call), Subfield("e", "12")],
            )
        )
    return record


def marc21(title, isbn, author, publisher, year, clc, barcode, location):
    record = Record(force_utf8=True)
    record.add_field(Field(tag="020", indicators=Indicators(" ", " "), subfields=[Subfield("a", f"{isbn} (pbk.)")]))
    record.add_field(Field(tag="084", indicators=Indicators(" ", " "), subfields=[Subfield("a", clc), Subfield("2", "clc")]))
    record.add_field(Field(tag="100", indicators=Indicators("1", " "), subfields=[Subfield("a", author + ",")]))
    record.add_field(Field(tag="245", indicators=Indicators("1", "0"), subfields=[Subfield("a", title + " /"), Subfield("c", author)]))
    record.add_field(
        Field(tag="264", indicators=Indicators(" ", "1"), subfields=[Subfield("a", "北京 :"), Subfield("b", publisher + ","), Subfield("c", year)])
    )
    record.add_field(Field(tag="650", indicators=Indicators(" ", "0"), subfields=[Subfield("a", "科学幻想小说")]))
    record.add_field(Field(tag="852", indicators=Indicators(" ", " "), subfields=[Subfield("c", location), Subfield("h", clc), Subfield("p", barcode)]))
    return record


# 7-02-000220-X and 9787536692930 are real; the other ISBNs here have valid check digits but
# are made up for the tests.
CN_BOOKS = [
    ("围城", "7-02-000220-X", "钱钟书", "人民文学出版社", "1991", "I246.5", [("C0001", "A-01-1", "I246.5"), ("C0002", "A-01-2", "I246.5")]),
    ("長安的荔枝", "978-7-5726-0614-4", "马伯庸", "湖南文艺出版社", "2022", "I247.53", [("C0003", "A-02-1", "I247.53")]),
]


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_cnmarc_in_utf8_and_gb18030(session, tmp_path, encoding):
    records = [cnmarc(*book) for book in CN_BOOKS]
    assert records[0].title is None  # pymarc's MARC21 shortcuts know nothing of CNMARC
    path = tmp_path / "books.iso"
    path.write_bytes(b"".join(marc_bytes(r, encoding) for r in records))
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            path.read_bytes().decode("utf-8")
    report = import_file(session, path)
    assert (report.total, report.created, report.failed, report.copies) == (2, 2, 0, 3), report.errors
    book = session.scalar(select(Book).where(Book.title == "围城"))
    assert (book.authors, book.publisher, book.year, book.isbn, book.call_number, book.clc_class) == (
        "钱钟书",
        "人民文学出版社",
        1991,
        "9787020002207",
        "I246.5/12",
        "I",
    )
    assert [(c.barcode, c.location) for c in book.copies] == [("C0001", "A-01-1"), ("C0002", "A-01-2")]
    # Traditional characters in the record are stored as given and found either way.
    assert search.search(session, "长安的荔枝").hits[0].title == "長安的荔枝"
    assert search.search(session, "cadlz").hits[0].title == "長安的荔枝"


def test_marc21_utf8(session, tmp_path):
    path = tmp_path / "books.mrc"
    records = [
        marc21("三体", "9787536692930", "刘慈欣", "重庆出版社", "2008", "I247.55", "M0001", "B-01-1"),
        marc21("球状闪电", "7-5364-5632-8", "刘慈欣", "四川科学技术出版社", "2005", "I247.55", "M0002", "B-01-2"),
    ]
    path.write_bytes(b"".join(r.as_marc() for r in records))
    report = import_file(session, path)
    assert (report.created, report.failed, report.copies) == (2, 0, 2), report.errors
    book = session.scalar(select(Book).where(Book.title == "三体"))
    assert (book.authors, book.publisher, book.year, book.call_number, book.subjects) == ("刘慈欣", "重庆出版社", 2008, "I247.55", "科学幻想小说")
    assert book.copies[0].location == "B-01-1"


def _rows():
    return [
        list(TEMPLATE_HEADERS),
        ["红楼梦", "", "曹雪芹, 高鹗", "人民文学出版社", "1982", "7-02-000220-X", "I242.4/12", "章回小说", "", "T001", "a-03-2"],
        ["红楼梦", "", "曹雪芹, 高鹗", "人民文学出版社", "1982", "7-02-000220-X", "I242.4/12", "章回小说", "", "T002", "A-03-2"],
        ["西游记", "", "吴承恩", "人民文学出版社", "1980", "978-7-02-000221-5", "I242.4", "", "", "T003", "A-03-3"],  # bad check digit
        ["", "", "无名氏", "某出版社", "2000", "", "", "", "", "T004", ""],  # no title
        ["水浒传", "", "施耐庵", "人民文学出版社", "1975", "", "I242.4", "", "", "T001", "A-03-4"],  # barcode of 红楼梦
        ["三国演义", "", "罗贯中", "人民文学出版社", "一九七三", "", "I242.4", "", "", "T005", "A-03-5"],  # bad year
        ["边城", "", "沈从文", "人民文学出版社", "2002", "", "I246.5", "", "", "T006", "A-04-1"],
    ]


def _csv(tmp_path, rows, encoding="utf-8-sig"):
    import csv

    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path = tmp_path / "books.csv"
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def _xlsx(tmp_path, rows):
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    path = tmp_path / "books.xlsx"
    workbook.save(path)
    return path


@pytest.mark.parametrize("make", [_csv, _xlsx, lambda p, r: _csv(p, r, "gb18030")], ids=["csv", "xlsx", "csv-gb18030"])
def test_bad_rows_are_reported_and_the_good_ones_imported(session, tmp_path, make):
    path = make(tmp_path, _rows())
    report = import_file(session, path)
    assert (report.total, report.created, report.copies, report.failed) == (7, 2, 3, 4)
    reasons = {e["record"]: e["reason"] for e in report.errors}
    assert sorted(reasons) == [3, 4, 5, 6]
    assert "ISBN" in reasons[3] and "T001" in reasons[5]
    assert {b.title for b in session.scalars(select(Book))} == {"红楼梦", "边城"}
    assert session.scalar(select(Copy.location).where(Copy.barcode == "T001")) == "A-03-2"
    batch = session.get(ImportBatch, report.batch_id)
    assert batch.status == ImportStatus.DONE and batch.failed == 4 and len(batch.errors) == 4

    # The same file again changes nothing.
    before = (_count(session, Book), _count(session, Copy))
    again = import_file(session, path)
    assert (again.created, again.updated, again.copies, again.failed) == (0, 0, 0, 4)
    assert again.unchanged == 2
    assert (_count(session, Book), _count(session, Copy)) == before


def test_reimport_with_a_changed_field_updates(session, tmp_path):
    rows = _rows()[:2]
    import_file(session, _csv(tmp_path, rows))
    rows[1][3] = "人民文学出版社（北京）"
    report = import_file(session, _csv(tmp_path, rows))
    assert (report.created, report.updated) == (0, 1)
    assert _count(session, Book) == 1
    assert search.search(session, "人民文学出版社北京").total == 1


def test_an_unreadable_file_fails_the_batch_not_the_process(session, tmp_path):
    path = tmp_path / "books.csv"
    path.write_bytes("作者,出版社\n某,某\n".encode())
    with pytest.raises(CatalogueError) as error:
        import_file(session, path)
    assert error.value.code == "no_title_column"
    assert session.scalar(select(ImportBatch.status)) == ImportStatus.FAILED
    with pytest.raises(CatalogueError):
        photo = tmp_path / "photo.jpg"
        photo.write_bytes(b"\xff\xd8\xff\xe0")
        import_file(session, photo)


def test_a_broken_marc_record_is_reported_and_the_rest_read(session, tmp_path):
    good = [marc_bytes(cnmarc(*book), "utf-8") for book in CN_BOOKS]
    broken = b"00060nam  22000493  450 " + b"garbage" * 5 + b"\x1d"  # right length, no directory
    path = tmp_path / "mixed.iso"
    path.write_bytes(good[0] + broken + good[1])
    report = import_file(session, path)
    assert report.created == 2 and report.failed == 1 and report.errors[0]["record"] == 2


def test_command_line_import(app, tmp_path):
    path = _csv(tmp_path, _rows())
    result = app.test_cli_runner().invoke(args=["catalogue", "import", str(path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2" in result.output
    assert "ISBN" in result.output  # the refused records are listed
