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


@dataclass(frozen=True)
class ScanContext:
    """What a recogniser may know besides the code: the app config (keys, centre code) and
    this visit's session values (e.g. the activity on screen), read-only."""

    config: Mapping[str, Any]
    visitor: Mapping[str, Any] = field(default_factory=dict)


# A recogniser gets the DB session, the cleaned code and the context; it returns None for a
# code that is not its kind, an outcome, or raises a KioskError refusal.
Recogniser = Callable[[Session, str, ScanContext], ScanOutcome | None]
_RECOGNISERS: dict[str, tuple[int, Recogniser]] = {}


class ScanError(KioskError):
    pass


def recogniser(kind: str, priority: int = 0) -> Callable[[Recogniser], Recogniser]:
    """Register a recogniser; higher priority asks first (a check-in screen claims a member
    card before 我的积分 does)."""

    def register(func: Recogniser) -> Recogniser:
        _RECOGNISERS[kind] = (priority, func)
        return func

    return register


def registered_kinds() -> list[str]:
    return [kind for kind, _ in sorted(_RECOGNISERS.items(), key=lambda item: -item[1][0])]


def clean_code(raw: str | None, max_length: int) -> str:
    if raw is None or not raw.strip():
        raise ScanError("scan_empty", _l("Nothing was scanned. Please scan again."))
    code = raw.strip()
    if len(code) > max_length:
        raise ScanError("scan_too_long", _l("This code is too long to be one of ours. Please scan a member card or a check-in code."))
    if not code.isprintable():
        raise ScanError("scan_unknown", _l("This code is not recognised. Please scan a member card or a check-in code."))
    return code


def recognise(session: Session, raw: str | None, context: ScanContext) -> ScanOutcome:
    code = clean_code(raw, int(context.config.get("MAX_SCAN_LENGTH", 160)))
    for kind in registered_kinds():
        outcome = _RECOGNISERS[kind][1](session, code, context)
        if outcome is not None:
            return outcome
    raise ScanError("scan_unknown", _l("This code is not recognised. Please scan a member card or a check-in code."))
