"""Who is at the kiosk: a phone number typed on the keypad (member cards come later)."""

from __future__ import annotations

import re
import unicodedata

from kiosk.errors import KioskError
from kiosk.i18n import _l

# Mainland China mobile numbers: 11 digits, 1 then 3–9.
MOBILE_PATTERN = re.compile(r"^1[3-9]\d{9}$")
MAX_RAW_LENGTH = 32


class PhoneError(KioskError):
    pass


def parse_phone(raw: str | None) -> str:
    """Return the 11-digit number or raise PhoneError with the visitor-readable reason.

    Full-width digits (from an IME) are folded, spaces and dashes ignored, and a +86 / 0086
    country prefix dropped, because that is how people write their numbers.
    """
    if raw is None or not raw.strip():
        raise PhoneError("phone_empty", _l("Please enter your mobile number."))
    if len(raw) > MAX_RAW_LENGTH:
        raise PhoneError("phone_too_long", _l("A mobile number has 11 digits."))
    text = unicodedata.normalize("NFKC", raw)
    text = re.sub(r"[\s\-]", "", text)
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    if not (text.isascii() and text.isdigit()):
        raise PhoneError("phone_not_digits", _l("A mobile number can only contain digits."))
    if len(text) != 11:
        raise PhoneError("phone_wrong_length", _l("A mobile number has 11 digits; you entered %(n)d.", n=len(text)))
    if not MOBILE_PATTERN.match(text):
        raise PhoneError("phone_bad_format", _l("This does not look like a mainland mobile number. Please check it."))
    return text
