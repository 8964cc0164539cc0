"""What a scanned code is.

A USB scanner types a code and Enter; the kiosk posts it to /scan, which asks the recognisers
the features registered (kiosk.features) in turn; the first that claims the code answers. Anything no one claims is an "unknown code", never an error page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from kiosk.errors import KioskError
from kiosk.i18n import _l


@dataclass
class ScanOutcome:
    kind: str
    message: Any = ""
    # Where the kiosk should go next: the values for the recogniser's endpoint (e.g. the
    # activity id), or None to stay on the page (the result is shown in place).
    url_values: dict[str, Any] | None = None
    # What the visitor session should remember for this visit (e.g. which member's card).
    visitor: dict[str, Any] = field(default_factory=dict)
    # Another endpoint than the recogniser's for this outcome (a card on the waiting list's
    # screen leads to the list's result page, on the keypad screen to the ticket).
    endpoint: str | None = None


@dataclass(frozen=True)
class ScanContext:
    """What a recogniser may know besides the code: the app config (keys, centre code) and
    this visit's session values (e.g. the activity on screen), read-only."""

    config: Mapping[str, Any]
    visitor: Mapping[str, Any] = field(default_factory=dict)


# A recogniser's function gets the DB session, the cleaned code and the context; it returns
# None for a code that is not its kind, an outcome, or raises a KioskError refusal.
RecogniseFunc = Callable[[Session, str, ScanContext], ScanOutcome | None]


@dataclass(frozen=True)
class Recogniser:
    """One kind of code a feature understands, registered through its Feature.

    Higher ``priority`` is asked first (a check-in screen claims a member card before
    我的积分 does). ``endpoint`` is where an outcome with ``url_values`` leads."""

    kind: str
    recognise: RecogniseFunc
    priority: int = 0
    endpoint: str | None = None


class ScanError(KioskError):
    pass


def clean_code(raw: str | None, max_length: int) -> str:
    if raw is None or not raw.strip():
        raise ScanError("scan_empty", _l("Nothing was scanned. Please scan again."))
    code = raw.strip()
    if len(code) > max_length:
        raise ScanError("scan_too_long", _l("This code is too long to be one of ours. Please scan a member card or a check-in code."))
    if not code.isprintable():
        raise ScanError("scan_unknown", _l("This code is not recognised. Please scan a member card or a check-in code."))
    return code


def recognise(session: Session, raw: str | None, context: ScanContext, recognisers: Sequence[Recogniser]) -> tuple[Recogniser, ScanOutcome]:
    """Ask each recogniser in order (highest priority first); the first to claim the code answers."""
    code = clean_code(raw, int(context.config.get("MAX_SCAN_LENGTH", 160)))
    for recogniser in recognisers:
        outcome = recogniser.recognise(session, code, context)
        if outcome is not None:
            return recogniser, outcome
    raise ScanError("scan_unknown", _l("This code is not recognised. Please scan a member card or a check-in code."))
