"""Demo reading hall: real Chinese titles (classics, red classics, contemporary novels,
children's books, health and hobby books a centre really lends) with their real authors and
publishers, and 中图法 call numbers (demo_titles.txt, one "title|authors|publisher|year|class"
a line).

ISBNs: only 红楼梦 carries its real one (7-02-000220-X, 人民文学出版社); the other demo books
have none rather than an invented number. Barcodes (DEMO00001…) and shelf codes are made up.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.catalogue.models import Book, Copy, Shelf, ShelfBook
from kiosk.catalogue.services import BookFields, apply_book, clc_class_of, source_key_for
from kiosk.catalogue.text import isbn13
from kiosk.db import write_transaction

TITLES_FILE = Path(__file__).with_name("demo_titles.txt")
REAL_ISBNS = {"红楼梦": "7-02-000220-X"}
SHELVES = (
    (
        "红色书架",
        "红色经典与党史读物",
        ("D", "A"),
        (
            "红岩",
            "林海雪原",
            "青春之歌",
            "红旗谱",
            "创业史",
            "保卫延安",
            "铁道游击队",
            "闪闪的红星",
            "红星照耀中国",
            "长征",
            "可爱的中国",
            "谁是最可爱的人",
            "红色家书",
            "红船精神",
        ),
    ),
    ("少儿读物", "适合孩子们阅读的故事与科普", (), ()),
)


def demo_books() -> list[BookFields]:
    books = []
    for line in TITLES_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        title, authors, publisher, year, clc = line.split("|")
        isbn = isbn13(REAL_ISBNS.get(title))
        books.append(BookFields(title=title, authors=authors, publisher=publisher, year=int(year), isbn=isbn, call_number=clc))
    return books


def _location(index: int, call_number: str) -> str:
    row = clc_class_of(call_number) or "Z"
    return f"{row}-{index % 6 + 1:02d}-{index % 5 + 1}"


def load(session: Session, zone: ZoneInfo) -> dict[str, int]:
    added = 0
    with write_transaction(session):
        existing = {b.source_key: b for b in session.scalars(select(Book))}
        barcodes = set(session.scalars(select(Copy.barcode)))
        by_title: dict[str, Book] = {}
        for index, fields in enumerate(demo_books(), start=1):
            key = source_key_for(fields)
            book = existing.get(key)
            if book is None:
                book, _ = apply_book(session, None, fields, key)
                added += 1
            by_title[fields.title] = book
            for n in range(1 + index % 3):
                barcode = f"DEMO{index:04d}{n}"
                if barcode not in barcodes:
                    session.add(Copy(book=book, barcode=barcode, location=_location(index, fields.call_number)))
        session.flush()
        for position, (name, description, classes, titles) in enumerate(SHELVES):
            shelf = session.scalar(select(Shelf).where(Shelf.name == name))
            if shelf is not None:
                continue
            shelf = Shelf(name=name, description=description, position=position)
            session.add(shelf)
            session.flush()
            chosen = [by_title[t] for t in titles if t in by_title]
            if not titles:
                chosen = [b for b in by_title.values() if b.call_number.startswith("I287")]
            chosen += [b for b in by_title.values() if b.clc_class in classes and b not in chosen]
            for i, book in enumerate(chosen):
                session.add(ShelfBook(shelf_id=shelf.id, book_id=book.id, position=i))
    return {"books": added}
