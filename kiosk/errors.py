from __future__ import annotations

from typing import Any


class KioskError(Exception):
    """A refusal the visitor or staff member should read: a reason code and a message.

    ``code`` is stable (tests, logs, API answers); ``message`` is a lazy translated string.
    ``status`` is the HTTP status a view should answer with.
    """

    status = 422

    def __init__(self, code: str, message: Any, *, status: int | None = None, field: str | None = None):
        super().__init__(code)
        self.code = code
        self.message = message
        # The form field the message belongs next to, when there is one.
        self.field = field
        if status is not None:
            self.status = status
        # Every refusal of a form checked as a whole (see ``several``); just this one by default.
        self.all_errors: list[KioskError] = [self]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def several(errors: list[KioskError]) -> KioskError:
    """One refusal standing for all of a form's refusals, so the form shows every error at once.

    It is the first refusal (its type, code and status), carrying the others in ``all_errors``.
    """
    first = errors[0]
    first.all_errors = list(errors)
    return first
