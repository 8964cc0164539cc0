"""Kiosk-only routes answer only a browser staff enrolled as a kiosk (docs/security.md).

The kiosk's keypad, card scan, 我的积分 and redemption trust whoever stands at the screen; on
the centre's LAN (where phones reach the poster pages) any other browser could reach them
too. The source address proves nothing behind a local TLS proxy, so an enrolled kiosk
carries a secret in its own long-lived cookie: separate from the Flask session, which the
idle reset clears, and HttpOnly + SameSite=Strict.

Recognising the device is one prebuilt read of its row on every kiosk request, so a
revocation committed by this process, by another server on the same file or by `kiosk device
revoke` is refused at the device's very next request. On SQLite it runs on a connection kept
for this read alone (``_Readers``: no pool checkout, no SQLAlchemy, no read transaction left
open): ~4 µs, less than the ``PRAGMA data_version`` check through the pool that the kept device
used to need (~10 µs), and no commit can make it read twice. (Until issue 11 part 5 the device
was kept in process under kiosk.cache's commit generation; every booking or check-in commit
moved that on, so a booking request paid the check *and* the read again: two checkouts.)
"""

from __future__ import annotations

import sqlite3
import threading
import unicodedata
import weakref
from dataclasses import dataclass
from typing import Any, cast

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from kiosk.devices.models import KioskDevice
from kiosk.extensions import db

DEVICE_COOKIE = "kiosk_device"
DEVICE_COOKIE_MAX_AGE = 5 * 365 * 24 * 3600
# Kiosk routes that staff screens also use and that show nothing about anyone: the live
# count polled by the rotating-QR screen, a reward's picture on the reward edit page, and a
# book's cover on the staff book page (a desk PC is not an enrolled kiosk).
OPEN_ENDPOINTS = frozenset({"checkin.count", "points.picture", "catalogue.cover"})


@dataclass(frozen=True)
class EnrolledDevice:
    """The enrolled device making a request (no ORM object)."""

    id: int
    name: str


# The enrolled, unrevoked device with this secret hash, as one prebuilt read of two columns (an
# ORM query was ~15 % of a booking request's CPU, bench/booking.py).
_device_t = cast(Table, KioskDevice.__table__)
_ENROLLED = select(_device_t.c.id, _device_t.c.name).where(_device_t.c.secret_hash == bindparam("secret_hash"), _device_t.c.revoked_at.is_(None))
_ENROLLED_SQL = "SELECT id, name FROM kiosk_device WHERE secret_hash = ? AND revoked_at IS NULL"


class _Readers:
    """Idle SQLite connections for the device read, per connection pool (a stack: a thread takes
    one, reads, gives it back; as many as requests ever read at once, at most the server's
    threads). Each is a pool connection detached from it, so it was set up as every other (WAL,
    busy_timeout), and refuses writes (query_only). Keyed by the pool object: ``engine.dispose()`` (``kiosk restore``, tests)
    replaces the pool, so no reader outlives it; a reader given back to a replaced pool's stack
    is closed with that stack."""

    def __init__(self) -> None:
        self._stacks: weakref.WeakKeyDictionary[Pool, list[sqlite3.Connection]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def stack(self, engine: Engine) -> list[sqlite3.Connection]:
        pool = engine.pool
        found = self._stacks.get(pool)
        if found is None:
            with self._lock:
                found = self._stacks.get(pool)
                if found is None:
                    found = self._stacks[pool] = []
                    weakref.finalize(pool, _close_all, found)
        return found

    @staticmethod
    def new(engine: Engine) -> sqlite3.Connection:
        proxied = engine.raw_connection()
        proxied.detach()
        reader = cast(sqlite3.Connection, proxied.dbapi_connection)
        reader.execute("PRAGMA query_only=ON")  # for this read only: a write slipped onto it fails
        return reader

    def idle(self) -> int:
        return sum(len(stack) for stack in list(self._stacks.values()))


def _close_all(stack: list[sqlite3.Connection]) -> None:
    while stack:
        stack.pop().close()


_readers = _Readers()


def kept_devices() -> int:
    """Idle device-reading connections (the memory probe reports them as "devices")."""
    return _readers.idle()


def _enrolled(session: Session, secret_hash: str) -> Any:
    """(id, name) of the enrolled device with this secret hash, or None. On SQLite outside a
    transaction, on a reader of its own in autocommit (the statement runs to its end, so no read
    transaction stays open); otherwise through the session."""
    engine = cast(Engine, session.get_bind())
    if engine.dialect.name == "sqlite" and not session.in_transaction():
        stack = _readers.stack(engine)
        try:
            reader = stack.pop()
        except IndexError:
            reader = _readers.new(engine)
        try:
            rows = reader.execute(_ENROLLED_SQL, (secret_hash,)).fetchall()
        except BaseException:
            reader.close()
            raise
        stack.append(reader)
        return rows[0] if rows else None
    return session.connection().execute(_ENROLLED, {"secret_hash": secret_hash}).first()


def _lookup(secret: str | None) -> EnrolledDevice | None:
    from kiosk.devices.services import MAX_SECRET_LENGTH, hash_secret

    if not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    row = _enrolled(db.session(), hash_secret(secret))
    return None if row is None else EnrolledDevice(row[0], row[1])


def current_device() -> EnrolledDevice | None:
    """The enrolled device making this request (None outside a kiosk route or if unknown)."""
    if "kiosk_device" not in g:
        g.kiosk_device = _lookup(request.cookies.get(DEVICE_COOKIE))
    return g.kiosk_device


def _refuse_unenrolled() -> Response | None:
    if request.endpoint in OPEN_ENDPOINTS or current_device() is not None:
        return None
    from flask_babel import gettext as _

    from kiosk.web import error_response

    return error_response(
        403,
        _("This device is not registered as a kiosk"),
        _("Please use the kiosk in the centre, or ask the staff at the desk to register this device."),
    )


def kiosk_blueprint(name: str, import_name: str, **kwargs) -> Blueprint:
    """A blueprint whose every route answers only an enrolled kiosk device (403 otherwise)."""
    blueprint = Blueprint(name, import_name, **kwargs)
    blueprint.before_request(_refuse_unenrolled)
    return blueprint


def set_device_cookie(response: Response, secret: str) -> Response:
    response.set_cookie(
        DEVICE_COOKIE,
        secret,
        max_age=DEVICE_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Strict",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        path="/",
    )
    return response


# ---- rate-limit keys (flask-limiter key_func) ----


def device_key() -> str:
    device = current_device()
    return f"device:{device.id if device else request.remote_addr}"


def phone_key() -> str:
    """Per number typed, whichever device typed it (digits only: "139 0000" is "1390000")."""
    raw = unicodedata.normalize("NFKC", (request.form.get("phone") or "")[:40])
    return "phone:" + "".join(ch for ch in raw if ch.isdigit())
