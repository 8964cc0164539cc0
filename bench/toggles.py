"""Toggles for bench/ab.py: ``toggle(app, on)`` switches one change on or off in process.

.venv/bin/python bench/ab.py toggles:device_cache --get /
"""

from __future__ import annotations

from kiosk.devices import access

_cached_lookup = access._lookup


def _uncached_lookup(secret: str | None) -> access.EnrolledDevice | None:
    """Before issue 9 part 3: one ORM query (and read transaction) per kiosk request."""
    from kiosk.devices.services import device_for_secret
    from kiosk.extensions import db

    device = device_for_secret(db.session, secret)
    return None if device is None else access.EnrolledDevice(device.id, device.name)


def device_cache(_app, on: bool) -> None:
    access._lookup = _cached_lookup if on else _uncached_lookup


def device_check(_app, on: bool) -> None:
    """Cost of the per-request ``PRAGMA data_version`` check alone: off keeps the device with
    no check at all (unsafe: revocations unseen; for measuring only)."""
    from kiosk import cache

    cache.commit_generation.check = (lambda session: cache.commit_generation.value) if not on else _check  # type: ignore[method-assign]
    access._lookup = _cached_lookup


_check = access.commit_generation.check
