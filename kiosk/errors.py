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

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
