"""Catalogue search: one function, search(), over the FTS5 index the migration keeps.

How a query is answered (the query is folded exactly as books are, kiosk.catalogue.text):
- a valid ISBN-10/13 (hyphens, spaces, full-width digits allowed) → the book with that ISBN;
- 3+ characters → the trigram table ``book_fts`` (title, other fields, and pinyin when the
  query is Latin letters only), the title tier from ``book_title_fts`` (the title columns only);
- 1–2 characters → the per-character table ``book_chars`` as a phrase: a trigram index cannot
  answer these (on SQLite 3.40 a LIKE against it silently returns no rows), and the character
  table finds exactly the books whose folded text contains the query, as a full scan would;
- Latin letters only (hlm, hongloumeng) are also matched against the stored pinyin of titles
  and authors; a query with Chinese characters never is (宏楼梦 does not find 红楼梦).

The query text never becomes FTS5 syntax: fold() keeps letters and digits only, and what is
left is quoted as one phrase.

Ranking in three tiers, each read in its own order so a page never sorts every hit (a common
character matches a third of a large catalogue): titles that start with the query (or whose
pinyin does), shortest first, so the exact title leads; then titles that contain it elsewhere;
then books where only another field does (author, publisher, subject, ISBN). Counts come from
the FTS tables without a join where the tiers nest (everything but 1–2 pinyin letters).

Counts stop at COUNT_CAP: up to it the count is exact (the same as a full scan), above it the
page says "more than 1,000". Counting a common phrase to the end was most of the cost of a
search (人民文学出版社 matches 12,351 of 100,000 books: 13 ms to count, 0.4 ms to count to
1,000), and nobody pages past the 125th page of eight. Each tier is counted only up to what
the cap leaves, so the tiers' offsets stay exact for every page the capped total allows.

What the cap cannot shorten is a tier with few hits in a long doclist: 人民文学出版社 is in no
title, but a column filter on ``book_fts`` still walks every book that has its trigrams in any
column (3–9 ms on 100,000 books). So the title tier of 3+ character queries reads
``book_title_fts``, which indexes the title columns only (0.02 ms for that query). The
counts are also kept per folded query (``_COUNTS``, LRU) with the FTS indexes' structure
records as their version: FTS5 rewrites the record at rowid 10 of ``*_data`` whenever a
transaction changes the index (the triggers on ``book``: services, imports in a child
process, a hand-made SQL fix), so any write to the searched text invalidates them, in the
same transaction as the write. A page's ids are always read fresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from kiosk.catalogue.text import fold, is_pinyin_query, isbn13, looks_like_isbn

PAGE_SIZE = 8
MAX_QUERY = 60
MAX_PAGE = 500
COUNT_CAP = 1000


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
    # True when there are at least ``total`` hits (the count stopped at the cap), not exactly.
    capped: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _phrase(q: str) -> str:
    return '"' + q.replace('"', '""') + '"'


_HI = "\U0010ffff"


@dataclass(frozen=True)
class _Plan:
    """Three tiers, each already in display order, shown one after the other:
    P — title (or, for pinyin, title pinyin) starts with the query: an index range, exact first;
    C — title contains it elsewhere: the FTS title column(s), in catalogue order;
    O — only another field contains it (author, publisher, subject, ISBN): FTS, NOT the title.
    C and O never repeat a book of P; O never repeats C (the FTS NOT)."""

    mode: str
    # The FTS table of the title tier: the title-only ``book_title_fts`` for 3+ characters.
    title_table: str
    # P as segments read one after the other, each (its rows to count, ids SQL in display order)
    prefix_segments: tuple[tuple[str, str], ...]
    table: str
    title_match: str
    other_match: str
    not_prefix: str  # SQL condition on b.* that is true outside P
    params: dict
    # Every book of P also matches the title tier (true except for 1–2 pinyin letters, whose
    # initials-prefix books need not contain the letters in their text).
    prefix_within_title: bool = True


def _plan(folded: str) -> _Plan:
    pinyin = is_pinyin_query(folded)
    params: dict = {"q": folded, "n": len(folded), "hi": folded + _HI}
    if len(folded) >= 3:
        table, title_table, phrase = "book_fts", "book_title_fts", _phrase(folded)
        title_cols, other_cols = ("{search_title pinyin_title}", "{search_text pinyin_other}") if pinyin else ("{search_title}", "{search_text}")
    else:
        table, title_table, phrase = "book_chars", "book_chars", _phrase(" ".join(folded))
        title_cols, other_cols = "{chars_title}", "{chars_text}"
    params["title_m"] = f"{title_cols}: {phrase}"
    params["other_m"] = f"{other_cols}: {phrase} NOT {title_cols}: {phrase}"
    params["any_m"] = "{" + title_cols.strip("{}") + " " + other_cols.strip("{}") + "}: " + phrase
    if pinyin:
        # Initials prefix, then full-pinyin prefix, then (Latin) title prefix, each in its
        # index's order (so the exact initials or spelling comes first) without sorting the
        # thousands of books a one- or two-letter prefix can hold.
        initials = "pinyin_initials >= :q AND pinyin_initials < :hi"
        full = "pinyin_full >= :q AND pinyin_full < :hi AND substr(pinyin_initials, 1, :n) != :q"
        title = "search_title >= :q AND search_title < :hi AND substr(pinyin_initials, 1, :n) != :q AND substr(pinyin_full, 1, :n) != :q"
        # Shortest first (honglou → 红楼梦 before 红楼春天); the sort reads only the index
        # (pinyin_initials; pinyin_full's index covers initials too), not the book rows.
        order = "length({0}), id"
        segments = tuple(
            (f"SELECT 1 FROM book WHERE {where}", f"SELECT id FROM book WHERE {where} ORDER BY " + order.format(column))
            for where, column in ((initials, "pinyin_initials"), (full, "pinyin_full"), (title, "search_title"))
        )
        not_prefix = " AND ".join(f"substr(b.{c}, 1, :n) != :q" for c in ("search_title", "pinyin_initials", "pinyin_full"))
        mode = "pinyin"
    else:
        where = "search_title >= :q AND search_title < :hi"
        segments = ((f"SELECT 1 FROM book WHERE {where}", f"SELECT id FROM book WHERE {where} ORDER BY length(search_title), search_title, id"),)
        not_prefix = "substr(b.search_title, 1, :n) != :q"
        mode = "text" if len(folded) >= 3 else "short"
    return _Plan(mode, title_table, segments, table, params["title_m"], params["other_m"], not_prefix, params, not (pinyin and len(folded) < 3))


def _table(plan: _Plan, match_param: str) -> str:
    return plan.title_table if match_param == "title_m" else plan.table


def _tier(session: Session, plan: _Plan, match_param: str, offset: int, limit: int) -> list[int]:
    if limit <= 0:
        return []
    table = _table(plan, match_param)
    sql = (
        f"SELECT b.id FROM {table} f JOIN book b ON b.id = f.rowid "
        f"WHERE {table} MATCH :{match_param} AND {plan.not_prefix} ORDER BY f.rowid LIMIT :limit OFFSET :offset"
    )
    return [row[0] for row in session.execute(text(sql), plan.params | {"limit": limit, "offset": offset})]


def _capped(session: Session, sql: str, params: dict, cap: int) -> int:
    """How many rows ``sql`` returns, counting no further than ``cap``."""
    if cap <= 0:
        return 0
    return int(session.execute(text(f"SELECT count(*) FROM ({sql} LIMIT :cap)"), params | {"cap": cap}).scalar_one())


def _fts_count(session: Session, plan: _Plan, match_param: str, cap: int) -> int:
    table = _table(plan, match_param)
    return _capped(session, f"SELECT rowid FROM {table} WHERE {table} MATCH :{match_param}", plan.params, cap)


def _tier_count(session: Session, plan: _Plan, match_param: str, cap: int) -> int:
    table = _table(plan, match_param)
    sql = f"SELECT b.id FROM {table} f JOIN book b ON b.id = f.rowid WHERE {table} MATCH :{match_param} AND {plan.not_prefix}"
    return _capped(session, sql, plan.params, cap)


def _counts(session: Session, plan: _Plan, cap: int) -> tuple[list[int], int, int]:
    """(per prefix segment, title tier, other tier), their sum exact below ``cap`` and equal
    to ``cap`` when there are more. A tier counts only up to what the tiers before it leave."""
    counts: list[int] = []
    left = cap
    for rows_sql, _ in plan.prefix_segments:
        counts.append(_capped(session, rows_sql, plan.params, left))
        left -= counts[-1]
    n_prefix = sum(counts)
    if left <= 0:
        return counts, 0, 0
    if plan.prefix_within_title:
        # P is part of the title matches and O excludes them: plain FTS counts, no join.
        # (one phrase over all columns counts faster than the NOT query: measured 5 vs 9 ms)
        # P ⊆ title hits and n_prefix < cap, so a capped title count is still ≥ n_prefix.
        title_hits = _fts_count(session, plan, "title_m", cap)
        n_title = title_hits - n_prefix
        n_other = _fts_count(session, plan, "any_m", cap) - title_hits if title_hits < cap else 0
        return counts, n_title, n_other
    n_title = _tier_count(session, plan, "title_m", left)
    return counts, n_title, _tier_count(session, plan, "other_m", left - n_title)


COUNTS_CACHE_SIZE = 2048
_COUNTS: OrderedDict[tuple[str, str, int], tuple[bytes, tuple[list[int], int, int]]] = OrderedDict()
_COUNTS_LOCK = threading.Lock()


def cached_counts() -> int:
    """How many folded queries' counts are kept (the memory probe reports it)."""
    return len(_COUNTS)


def _index_version(session: Session) -> bytes:
    """Changes with every committed write to either FTS index (see the module docstring)."""
    row = session.execute(
        text(
            "SELECT (SELECT block FROM book_fts_data WHERE id = 10), (SELECT block FROM book_chars_data WHERE id = 10),"
            " (SELECT block FROM book_title_fts_data WHERE id = 10)"
        )
    ).one()
    return b"/".join(bytes(block or b"") for block in row)


def _cached_counts(session: Session, plan: _Plan, folded: str, cap: int) -> tuple[list[int], int, int]:
    key = (str(session.get_bind().engine.url), folded, cap)
    version = _index_version(session)
    with _COUNTS_LOCK:
        hit = _COUNTS.get(key)
        if hit is not None and hit[0] == version:
            _COUNTS.move_to_end(key)
            return hit[1]
    counts = _counts(session, plan, cap)
    with _COUNTS_LOCK:
        _COUNTS[key] = (version, counts)
        _COUNTS.move_to_end(key)
        while len(_COUNTS) > COUNTS_CACHE_SIZE:
            _COUNTS.popitem(last=False)
    return counts


def clear_counts() -> None:
    with _COUNTS_LOCK:
        _COUNTS.clear()


def search(session: Session, raw: str | None, page: int = 1, page_size: int = PAGE_SIZE, *, cap: int | None = None) -> SearchResult:
    """One page of hits for a visitor's query; ``total`` is exact up to ``cap`` (see the module
    docstring); above it ``total`` is ``cap`` with ``capped`` set, and the pages stop there."""
    cap = COUNT_CAP if cap is None else max(1, cap)
    raw = (raw or "")[:200]
    page = min(max(1, page), MAX_PAGE)
    if looks_like_isbn(raw):
        isbn = isbn13(raw)
        if isbn is not None:
            ids: list[int] = [row[0] for row in session.execute(text("SELECT id FROM book WHERE isbn = :isbn ORDER BY id"), {"isbn": isbn})]
            if ids:
                return SearchResult(raw, isbn, "isbn", len(ids), 1, _load_hits(session, ids), page_size)
    folded = fold(raw)[:MAX_QUERY]
    if not folded:
        return SearchResult(raw, "", "", 0, 1, [], page_size)
    plan = _plan(folded)
    # Counted to one past the cap, so that "more than cap" is true when it is said.
    counts, n_title, n_other = _cached_counts(session, plan, folded, cap + 1)
    n_prefix = sum(counts)
    total = min(cap, n_prefix + n_title + n_other)
    page = min(page, max(1, -(-total // page_size)))  # past the last page: the last page
    start, end = (page - 1) * page_size, min(page * page_size, total)
    ids = []
    before = 0
    for (_, ids_sql), count in zip(plan.prefix_segments, counts):
        take = min(end, before + count) - max(start, before)
        if take > 0:
            offset = max(0, start - before)
            ids += [row[0] for row in session.execute(text(ids_sql + " LIMIT :limit OFFSET :offset"), plan.params | {"limit": take, "offset": offset})]
        before += count
    title_start = max(0, start - n_prefix)
    title_take = min(end, n_prefix + n_title) - max(start, n_prefix)
    ids += _tier(session, plan, "title_m", title_start, title_take)
    other_start = max(0, start - n_prefix - n_title)
    other_take = min(end, n_prefix + n_title + n_other) - max(start, n_prefix + n_title)
    ids += _tier(session, plan, "other_m", other_start, other_take)
    return SearchResult(raw, folded, plan.mode, total, page, _load_hits(session, ids), page_size, capped=n_prefix + n_title + n_other > cap)


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
