"""The input rules every feature shares: free text from a staff form, and whole numbers.

Each function raises the caller's own KioskError subclass (``error=``), so a feature's
refusals keep its type while the rules live in one place. Codes: ``<field>_required``,
``<field>_too_long``, ``<field>_invalid``, ``not_an_integer``, ``<field>_out_of_range``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal, overload

from kiosk.errors import KioskError
from kiosk.i18n import _l

_SIGNED = re.compile(r"^[+-]?[0-9]{1,9}$")
_UNSIGNED = re.compile(r"^\+?[0-9]{1,9}$")


def clean_text(raw: str | None, limit: int, field: str, *, error: type[KioskError], required: bool = False) -> str:
    """Whitespace folded to single spaces; refused when missing, too long or unprintable."""
    text = " ".join((raw or "").split())
    if required and not text:
        raise error(f"{field}_required", _l("Please fill this in."), field=field)
    if len(text) > limit:
        raise error(f"{field}_too_long", _l("At most %(n)d characters.", n=limit), field=field)
    if not text.isprintable():
        raise error(f"{field}_invalid", _l("This contains characters that cannot be used."), field=field)
    return text


@overload
def parse_whole_number(
    raw: Any,
    field: str,
    *,
    error: type[KioskError],
    low: int | None = None,
    high: int | None = None,
    signed: bool = True,
    optional: Literal[False] = False,
    range_code: str | None = None,
    range_message: Any = None,
) -> int: ...


@overload
def parse_whole_number(
    raw: Any,
    field: str,
    *,
    error: type[KioskError],
    low: int | None = None,
    high: int | None = None,
    signed: bool = True,
    optional: bool,
    range_code: str | None = None,
    range_message: Any = None,
) -> int | None: ...


def parse_whole_number(
    raw: Any,
    field: str,
    *,
    error: type[KioskError],
    low: int | None = None,
    high: int | None = None,
    signed: bool = True,
    optional: bool = False,
    range_code: str | None = None,
    range_message: Any = None,
) -> int | None:
    """A whole number: "1.5", "1e3", "abc" and True are refused, never rounded. Full-width
    digits from a Chinese IME are read; ``optional`` turns an empty entry into None."""
    if isinstance(raw, bool):
        raise error("not_an_integer", _l("Please enter a whole number."), field=field)
    if isinstance(raw, int):
        value = raw
    else:
        # NFKC reads full-width digits and minus; U+2212 (the typographic minus) it leaves alone.
        text = unicodedata.normalize("NFKC", raw or "").strip().replace("\u2212", "-")
        if optional and not text:
            return None
        # A negative below a stated lower bound is a number out of range ("0 or more"), not
        # "not a whole number"; without a bound an unsigned field still refuses the sign.
        negative_in_range_check = not signed and low is not None and text.startswith("-")
        if not (_SIGNED if signed or negative_in_range_check else _UNSIGNED).match(text):
            raise error("not_an_integer", _l("Please enter a whole number."), field=field)
        value = int(text)
    if (low is not None and value < low) or (high is not None and value > high):
        if range_message:
            message = range_message
        elif high is None:
            message = _l("Please enter %(low)d or more.", low=low)
        elif low is None:
            message = _l("Please enter %(high)d or less.", high=high)
        else:
            message = _l("Please enter a number from %(low)d to %(high)d.", low=low, high=high)
        raise error(range_code or f"{field}_out_of_range", message, field=field)
    return value
