"""Catalogue search: one function, search(), over the FTS5 index the migration keeps.

How a query is answered (the query is folded exactly as books are, kiosk.catalogue.text):
- a valid ISBN-10/13 (hyphens, spaces, full-width digits allowed) → the book with that ISBN;
- 3+ characters → the trigram table ``book_fts`` (title, other fields, and pinyin when the
  query is Latin letters only);
- 1–2 characters → the per-character table ``book_chars`` as a phrase: a trigram index cannot
  answer these (on SQLite 3.40 a LIKE against it silently returns no rows), and the character
  table finds exactly the books whose folded text contains the query, as a full scan would;
- Latin letters only (hlm, hongloumeng) are also matched against the stored pinyin of titles
  and authors; a query with Chinese characters never is (宏楼梦 does not find 红楼梦).

The query text never becomes FTS5 syntax: fold() keeps letters and digits only, and what is
left is quoted as one phrase. Ranking: exact title, then title prefix (text or pinyin), then
title contains, then the rest; shorter titles first within a rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from kiosk.catalogue.text import fold, is_pinyin_query, isbn13, looks_like_isbn

PAGE_SIZE = 8
MAX_QUERY = 60
MAX_PAGE = 500


@dataclass(frozen=True)
class Hit:
    id: int
    title: str
    subtitle: str
    authors: str
    publisher: str
    year: int | None
    call_number: str
    cover: str | None
    copies: int
    on_shelf: int
    locations: tuple[str, ...]

    @property
    def available(self) -> bool:
        return self.on_shelf > 0


@dataclass(frozen=True)
class SearchResult:
    query: str
    folded: str
    mode: str  # "", "isbn", "text", "short", "pinyin"
    total: int
    page: int
    hits: list[Hit] = field(default_factory=list)
    page_size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _phrase(q: str) -> str:
    return '"' + q.replace('"', '""') + '"'


_TEXT_RANK = """CASE WHEN b.search_title = :q THEN 0
    WHEN substr(b.search_title, 1, :n) = :q THEN 1
    WHEN instr(b.search_title, :q) > 0 THEN 2 ELSE 4 END"""
_PINYIN_RANK = """CASE WHEN b.search_title = :q OR b.pinyin_initials = :q OR b.pinyin_full = :q THEN 0
    WHEN substr(b.search_title, 1, :n) = :q OR substr(b.pinyin_initials, 1, :n) = :q OR substr(b.pinyin_full, 1, :n) = :q THEN 1
    WHEN instr(b.search_title, :q) > 0 OR instr(b.pinyin_full, :q) > 0 THEN 2
    WHEN instr(b.pinyin_initials, :q) > 0 THEN 3 ELSE 4 END"""


def _hits_sql(folded: str) -> tuple[str, str, dict]:
    """(mode, SQL of a CTE body selecting matching book ids, parameters)."""
    params: dict = {"q": folded, "n": len(folded)}
    pinyin = is_pinyin_query(folded)
    if len(folded) >= 3:
        columns = "{search_title search_text search_pinyin}" if pinyin else "{search_title search_text}"
        params["m"] = f"{columns}: {_phrase(folded)}"
        return ("pinyin" if pinyin else "text"), "SELECT rowid AS id FROM book_fts WHERE book_fts MATCH :m", params
    params["m"] = _phrase(" ".join(folded))
    sql = "SELECT rowid AS id FROM book_chars WHERE book_chars MATCH :m"
    if pinyin:
        # h, hl: titles whose pinyin initials start so (an index range, not a scan).
        params["hi"] = folded + "\U0010ffff"
        sql += " UNION SELECT id FROM book WHERE pinyin_initials >= :q AND pinyin_initials < :hi"
        return "pinyin", sql, params
    return "short", sql, params


def search(session: Session, raw: str | None, page: int = 1, page_size: int = PAGE_SIZE) -> SearchResult:
    raw = (raw or "")[:200]
    page = min(max(1, page), MAX_PAGE)
    if looks_like_isbn(raw):
        isbn = isbn13(raw)
        if isbn is not None:
            ids = [row[0] for row in session.execute(text("SELECT id FROM book WHERE isbn = :isbn ORDER BY id"), {"isbn": isbn})]
            if ids:
                return SearchResult(raw, isbn, "isbn", len(ids), 1, _load_hits(session, ids), page_size)
    folded = fold(raw)[:MAX_QUERY]
    if not folded:
        return SearchResult(raw, "", "", 0, 1, [], page_size)
    mode, hits_sql, params = _hits_sql(folded)
    rank = _PINYIN_RANK if mode == "pinyin" else _TEXT_RANK
    params |= {"limit": page_size, "offset": (page - 1) * page_size}
    rows = session.execute(
        text(
            f"WITH hits(id) AS ({hits_sql}) "
            f"SELECT b.id, count(*) OVER () AS total FROM hits JOIN book b ON b.id = hits.id "
            f"ORDER BY {rank}, length(b.search_title), b.id LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    if rows:
        total = rows[0][1]
    elif page > 1:
        total = session.execute(text(f"WITH hits(id) AS ({hits_sql}) SELECT count(*) FROM hits"), params).scalar_one()
    else:
        total = 0
    return SearchResult(raw, folded, mode, int(total), page, _load_hits(session, [r[0] for r in rows]), page_size)


def _load_hits(session: Session, ids: list[int]) -> list[Hit]:
    """The books of a page, in the given order, with copies on shelf and their locations."""
    if not ids:
        return []
    marks = ",".join(str(int(i)) for i in ids)
    books = {
        row.id: row
        for row in session.execute(text(f"SELECT id, title, subtitle, authors, publisher, year, call_number, cover FROM book WHERE id IN ({marks})"))
    }
    copies: dict[int, list] = {i: [] for i in ids}
    for row in session.execute(text(f"SELECT book_id, status, location FROM book_copy WHERE book_id IN ({marks}) ORDER BY location, barcode")):
        copies[row.book_id].append(row)
    hits = []
    for book_id in ids:
        book = books.get(book_id)
        if book is None:
            continue
        rows = copies[book_id]
        on_shelf = [r for r in rows if r.status == "on_shelf"]
        locations = tuple(dict.fromkeys(r.location for r in (on_shelf or rows) if r.location))
        hits.append(
            Hit(book.id, book.title, book.subtitle, book.authors, book.publisher, book.year, book.call_number, book.cover, len(rows), len(on_shelf), locations)
        )
    return hits


def scan_count(session: Session, raw: str) -> int:
    """How many books a plain full scan finds for a query (tests and the benchmark compare)."""
    folded = fold(raw)
    return int(
        session.execute(
            text("SELECT count(*) FROM book WHERE instr(search_title, :q) > 0 OR instr(search_text, :q) > 0"),
            {"q": folded},
        ).scalar_one()
    )
