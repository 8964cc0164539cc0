"""What a scanned code is.

A USB scanner types a code and Enter; the kiosk posts it to /scan, which asks each feature's
recogniser in turn. A feature registers one with @recogniser("kind"); the first that claims
the code answers. Anything no one claims is an "unknown code", never an error page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from kiosk.errors import KioskError
from kiosk.i18n import _l


@dataclass
class ScanOutcome:
    kind: str
    # Where the kiosk should go next (a member's points page, a ticket), or None to stay.
    redirect_to: str | None = None
    message: Any = ""
    # What the visitor session should remember for this visit (e.g. which member's card).
    visitor: dict[str, Any] = field(default_factory=dict)


# A recogniser gets the session, the cleaned code and the app config (keys, centre code); it
# returns None for a code that is not its kind, an outcome, or raises a KioskError refusal.
Recogniser = Callable[[Session, str, Mapping[str, Any]], ScanOutcome | None]
_RECOGNISERS: dict[str, Recogniser] = {}


class ScanError(KioskError):
    pass


def recogniser(kind: str) -> Callable[[Recogniser], Recogniser]:
    def register(func: Recogniser) -> Recogniser:
        _RECOGNISERS[kind] = func
        return func

    return register


def registered_kinds() -> list[str]:
    return list(_RECOGNISERS)


def clean_code(raw: str | None, max_length: int) -> str:
    if raw is None or not raw.strip():
        raise ScanError("scan_empty", _l("Nothing was scanned. Please scan again."))
    code = raw.strip()
    if len(code) > max_length:
        raise ScanError("scan_too_long", _l("This code is too long to be one of ours. Please scan a member card or a check-in code."))
    if not code.isprintable():
        raise ScanError("scan_unknown", _l("This code is not recognised. Please scan a member card or a check-in code."))
    return code


def recognise(session: Session, raw: str | None, config: Mapping[str, Any]) -> ScanOutcome:
    code = clean_code(raw, int(config.get("MAX_SCAN_LENGTH", 160)))
    for func in _RECOGNISERS.values():
        outcome = func(session, code, config)
        if outcome is not None:
            return outcome
    raise ScanError("scan_unknown", _l("This code is not recognised. Please scan a member card or a check-in code."))
