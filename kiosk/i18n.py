"""Translation helpers usable from services (no request needed).

Services raise errors whose message is a lazy string: it is translated when it is shown, in
the visitor's language, and reads as the English source text in a plain test.

Flask-Babel's lazy strings declare themselves safe HTML (``__html__``), so Jinja would print
``_l("…%(title)s…", title=…)`` without escaping the title (an activity called
``<b hx-get=… hx-trigger=load>`` would become live markup). Ours are plain text: Jinja
escapes them like any other string (docs/security.md).
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext
from flask_babel.speaklater import LazyString


class PlainLazyString(LazyString):
    """A lazy translation that is text, never markup."""

    def __getattribute__(self, name: str) -> Any:
        if name == "__html__":
            raise AttributeError(name)
        return super().__getattribute__(name)

    def __getattr__(self, name: str) -> Any:
        if name == "__html__":
            raise AttributeError(name)
        return super().__getattr__(name)


def _l(string: str, **variables: Any) -> PlainLazyString:
    return PlainLazyString(gettext, string, **variables)
