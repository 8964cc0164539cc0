"""Text folding for the catalogue: one function decides what a book's text and a query become.

fold(): NFKC (full-width ｈｌｍ / ９７８ → half-width), lower case, traditional → simplified
(OpenCC t2s: 紅樓夢 → 红楼梦), and only letters and digits kept (punctuation and spaces go, so
《红楼梦》, "Harry Potter" and FTS5 syntax characters such as " * ( ) - never reach a MATCH).
Books are stored folded and queries are folded the same way, so both sides always agree.

Pinyin comes from pypinyin with its phrase data (银行 → yin hang, 重庆 → chong qing); it is
imported only where books are written in bulk (import, demo), never on the search path: a typed
query is matched against the stored pinyin, and pypinyin's dictionaries cost ~55 MB, kept by a
process until it ends. The kiosk's server (a staff edit of one book) asks a short-lived child
process instead: pinyin_many(), which runs this file as a script.

ISBN: own validation and normalisation to ISBN-13 (checked against isbnlib in the tests).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

# Separates fields in the per-character index, so that the last character of the title and the
# first of the author never read as one bigram. A private-use character: fold() drops it from
# queries (it is neither a letter nor a digit), so nobody can search for it.
FIELD_BREAK = "\ue000"


@functools.cache
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def _keep(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in "LN"


def fold(text: str | None) -> str:
    """What a book's text and a query are compared as (see the module docstring)."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).lower()
    if not text.isascii():
        text = _t2s().convert(text)
    return "".join(ch for ch in text if _keep(ch))


def spaced(*fields: str) -> str:
    """Folded fields, one token per character, for the 1–2 character index (unicode61)."""
    return f" {FIELD_BREAK} ".join(" ".join(field) for field in fields if field)


def has_cjk(text: str) -> bool:
    return any(not ch.isascii() for ch in text)


def is_pinyin_query(folded: str) -> bool:
    """Latin letters only: the visitor may be typing pinyin (hlm, hongloumeng)."""
    return bool(folded) and folded.isascii() and folded.isalpha()


@functools.cache
def _pinyin() -> Any:
    import pypinyin

    return pypinyin


@functools.lru_cache(maxsize=4096)
def pinyin_of(text: str) -> tuple[str, str]:
    """(full, initials) of a folded text: 重庆森林 → ("chongqingsenlin", "cqsl").

    Phrase data picks the reading (银行 → yinhang, yh). Latin letters and digits pass through
    as they are: each Latin word counts as one syllable for the initials (Python编程 → pythonbc /
    pbc would be odd, so a Latin run contributes its first letter: "pbc").
    """
    if not text:
        return "", ""
    pypinyin = _pinyin()
    # errors=lambda keeps non-Chinese runs whole (they come back as one item).
    items = pypinyin.lazy_pinyin(text, style=pypinyin.Style.NORMAL, errors=lambda run: [run])
    full: list[str] = []
    initials: list[str] = []
    for item in items:
        item = "".join(ch for ch in item.lower() if ch.isascii() and ch.isalnum())
        if not item:
            continue
        full.append(item)
        initials.append(item if item.isdigit() else item[0])
    return "".join(full), "".join(initials)


PINYIN_CHILD_TIMEOUT = 60  # seconds; a cold start with the dictionaries takes about one


def pinyin_many(texts: Sequence[str]) -> list[tuple[str, str]]:
    """pinyin_of() for each text. A process that has not loaded pypinyin (the kiosk's server)
    does not load it for this: a child process (this file as a script, nothing of the kiosk
    imported) reads the texts as JSON on stdin and answers on stdout, and its ~55 MB go when
    it exits. Should the child fail, the pinyin is computed here after all (logged): an edit
    is worth more than the memory."""
    texts = list(texts)
    if "pypinyin" in sys.modules or not any(texts):
        return [pinyin_of(t) for t in texts]
    try:
        done = subprocess.run(
            [sys.executable, "-I", __file__],
            input=json.dumps(texts).encode("ascii"),
            capture_output=True,
            timeout=PINYIN_CHILD_TIMEOUT,
            check=True,
        )
        pairs = json.loads(done.stdout)
        if not (isinstance(pairs, list) and len(pairs) == len(texts)):
            raise ValueError("answer does not match the question")
        return [(str(full), str(initials)) for full, initials in pairs]
    except (OSError, subprocess.SubprocessError, ValueError, TypeError) as error:
        logger.warning("pinyin child process failed (%s): computing pinyin in this process", type(error).__name__)
        return [pinyin_of(t) for t in texts]


def _pinyin_child() -> None:
    texts = json.loads(sys.stdin.buffer.read())
    sys.stdout.write(json.dumps([list(pinyin_of(str(t))) for t in texts]))


# ---- ISBN ----

_ISBN_CHARS = re.compile(r"[\s\-‐‑–—]")


def _isbn10_check(digits9: str) -> str:
    total = sum((10 - i) * int(d) for i, d in enumerate(digits9))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def _isbn13_check(digits12: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits12))
    return str((10 - total % 10) % 10)


def isbn13(raw: str | None) -> str | None:
    """A valid ISBN-10 or ISBN-13 (hyphens, spaces, full-width digits allowed) as ISBN-13;
    None when it is not one (wrong length or check digit)."""
    if not raw:
        return None
    text = _ISBN_CHARS.sub("", unicodedata.normalize("NFKC", raw)).upper()
    if text.startswith("ISBN"):
        text = text[4:].lstrip(":")
    if text.strip("0") in ("", "X"):
        return None  # 0000000000 passes the check digit but is no book (isbnlib agrees)
    if len(text) == 10 and text[:9].isdigit() and (text[9].isdigit() or text[9] == "X"):
        if _isbn10_check(text[:9]) != text[9]:
            return None
        body = "978" + text[:9]
        return body + _isbn13_check(body)
    if len(text) == 13 and text.isdigit() and text[:3] in ("978", "979"):
        return text if _isbn13_check(text[:12]) == text[12] else None
    return None


def isbn10(isbn: str) -> str | None:
    """The ISBN-10 form of an ISBN-13 (only 978- numbers have one)."""
    if len(isbn) != 13 or not isbn.startswith("978"):
        return None
    return isbn[3:12] + _isbn10_check(isbn[3:12])


def looks_like_isbn(raw: str) -> bool:
    text = _ISBN_CHARS.sub("", unicodedata.normalize("NFKC", raw or "")).upper()
    if text.startswith("ISBN"):
        text = text[4:].lstrip(":")
    return len(text) in (10, 13) and text[:-1].isdigit()


def hyphenless(raw: str) -> str:
    return _ISBN_CHARS.sub("", unicodedata.normalize("NFKC", raw or ""))


if __name__ == "__main__":
    _pinyin_child()
