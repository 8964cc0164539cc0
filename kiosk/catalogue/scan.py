"""The reading hall's recogniser for the kiosk scanner: a book's ISBN barcode (EAN-13 on the
back cover) or a copy's barcode opens that book's page with its shelf and availability."""

from __future__ import annotations

from sqlalchemy import select

from kiosk.catalogue.models import Book, Copy
from kiosk.catalogue.services import CatalogueError
from kiosk.catalogue.text import isbn13
from kiosk.i18n import _l
from kiosk.scan.services import Recogniser, ScanOutcome


def recognise_book(session, code, context):
    isbn = isbn13(code) if code.isdigit() or code.upper().endswith("X") else None
    if isbn is not None:
        book_id = session.scalar(select(Book.id).where(Book.isbn == isbn).order_by(Book.id).limit(1))
        if book_id is None:
            raise CatalogueError("book_not_here", _l("This book is not in our reading hall."), status=404)
    else:
        if len(code) > 40 or not code.isascii():
            return None
        book_id = session.scalar(select(Copy.book_id).where(Copy.barcode == "".join(code.split()).upper()))
        if book_id is None:
            return None
    title = session.scalar(select(Book.title).where(Book.id == book_id))
    return ScanOutcome(kind="book", url_values={"book_id": book_id}, message=f"《{title}》")


# Asked last: cards and check-in codes carry their own prefixes and are claimed first.
BOOK = Recogniser("book", recognise_book, priority=-10, endpoint="catalogue.book")
