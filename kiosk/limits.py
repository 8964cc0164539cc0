"""A cheap in-process rate limit for the hot visitor routes (issue 9).

Flask-Limiter with its ``memory://`` storage costs a phone check-in about a millisecond of GIL
time: its decorator and after-request hook, the ``limits`` strategy, and a timer thread the
storage starts again every few hundredths of a second to expire keys. A kiosk is one process
with its counters in memory anyway, so the check-in route uses this instead: a fixed window
per key (the same strategy Flask-Limiter uses by default: the window starts at the key's
first hit and lasts the limit's period), a dict and a lock, expired keys swept at most once
a minute. Same limit strings as the config (``"30 per minute"``, ``"3 per 10 minutes"``), same
``RATELIMIT_ENABLED`` switch, the same 429 page.

    @fixed_window(Limit("phone", lambda: config["PHONE_CHECKIN_RATE_LIMIT"], remote_address))
    @fixed_window(Limit("pass", ..., pass_key, deduct_when=lambda response: response.status_code == 200))

A limit without ``deduct_when`` counts every request before the view runs; one with it only
checks before the view (refusing once the window is used up) and counts the response after
it when ``deduct_when(response)`` holds (a pass counts successful check-ins only).
Counters are per app (``app.extensions``): every app a test builds starts afresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any

from flask import Flask, current_app, make_response, request
from limits import parse
from werkzeug.exceptions import TooManyRequests

EXTENSION = "kiosk_limits"
SWEEP_SECONDS = 60.0


@lru_cache(maxsize=64)
def amount_and_period(text: str) -> tuple[int, float]:
    """``"3 per 10 minutes"`` -> (3, 600.0), parsed once per string."""
    item = parse(text)
    return item.amount, float(item.get_expiry())


def remote_address() -> str:
    return request.remote_addr or "127.0.0.1"


@dataclass(frozen=True)
class Limit:
    name: str
    value: Callable[[], str]  # the limit string, read per request (config may change)
    key: Callable[[], str]
    deduct_when: Callable[[Any], bool] | None = None


class Windows:
    """Fixed-window counters: key -> [window end (monotonic), hits]."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], list[float | int]] = {}
        self._next_sweep = time.monotonic() + SWEEP_SECONDS

    def _window(self, key: tuple[str, str], period: float, now: float) -> list[float | int]:
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            window = self._windows[key] = [now + period, 0]
        return window

    def hit(self, key: tuple[str, str], amount: int, period: float) -> bool:
        """Count one hit; False when it is over the limit."""
        now = time.monotonic()
        with self._lock:
            self._sweep(now)
            window = self._window(key, period, now)
            window[1] += 1
            return window[1] <= amount

    def test(self, key: tuple[str, str], amount: int) -> bool:
        """Whether one more hit would still be within the limit (counts nothing)."""
        window = self._windows.get(key)
        return window is None or window[0] <= time.monotonic() or window[1] < amount

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_SECONDS
        for key in [key for key, window in self._windows.items() if window[0] <= now]:
            del self._windows[key]

    def __len__(self) -> int:
        return len(self._windows)


def windows(app: Flask) -> Windows:
    found = app.extensions.get(EXTENSION)
    if found is None:
        found = app.extensions.setdefault(EXTENSION, Windows())
    return found


def fixed_window(*limits: Limit) -> Callable:
    """Decorate a view with the given limits (see the module's docstring)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            if not app.config.get("RATELIMIT_ENABLED", True):
                return view(*args, **kwargs)
            counters = windows(app)
            deferred = []
            for limit in limits:
                amount, period = amount_and_period(limit.value())
                key = (limit.name, limit.key())
                if limit.deduct_when is None:
                    if not counters.hit(key, amount, period):
                        raise TooManyRequests()
                else:
                    if not counters.test(key, amount):
                        raise TooManyRequests()
                    deferred.append((limit, key, amount, period))
            response = make_response(view(*args, **kwargs))
            for limit, key, amount, period in deferred:
                if limit.deduct_when is not None and limit.deduct_when(response):
                    counters.hit(key, amount, period)
            return response

        return limited

    return decorate
