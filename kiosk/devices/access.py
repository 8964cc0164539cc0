"""Kiosk-only routes answer only a browser staff enrolled as a kiosk (docs/security.md).

The kiosk's keypad, card scan, 我的积分 and redemption trust whoever stands at the screen; on
the centre's LAN (where phones reach the poster pages) any other browser could reach them
too. The source address proves nothing behind a local TLS proxy, so an enrolled kiosk
carries a secret in its own long-lived cookie: separate from the Flask session, which the
idle reset clears, and HttpOnly + SameSite=Strict.

Recognising the device was an ORM query and a read transaction on every kiosk request (~30 %
of a home page, its only database access). An enrolled device is now kept in process by the
hash of its secret, tagged with the commit generation (kiosk.cache) it was read under, and
used only while that generation holds: a revocation committed by this process, by another
server on the same file or by `kiosk device revoke` moves it on, so a revoked device is refused
at its very next request. What is checked per request is one ``PRAGMA data_version``. Unknown
secrets are not kept (a stranger's cookies cannot fill the cache; they query every time).
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, cast

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from kiosk.cache import commit_generation
from kiosk.devices.models import KioskDevice
from kiosk.extensions import db

DEVICE_COOKIE = "kiosk_device"
DEVICE_COOKIE_MAX_AGE = 5 * 365 * 24 * 3600
# Kiosk routes that staff screens also use and that show nothing about anyone: the live
# count polled by the rotating-QR screen, a reward's picture on the reward edit page, and a
# book's cover on the staff book page (a desk PC is not an enrolled kiosk).
OPEN_ENDPOINTS = frozenset({"checkin.count", "points.picture", "catalogue.cover"})


MAX_KEPT_DEVICES = 256


@dataclass(frozen=True)
class EnrolledDevice:
    """The enrolled device making a request, as kept between requests (no ORM object)."""

    id: int
    name: str


_kept: dict[tuple[str, str], tuple[int, EnrolledDevice]] = {}  # (database, secret hash) -> (generation, device)
_kept_lock = threading.Lock()


def kept_devices() -> int:
    """How many device lookups are kept (the memory probe reports it)."""
    return len(_kept)


# kiosk.devices.services.device_for_secret() as one prebuilt Core read of two columns: after
# any commit (every booking or check-in commits) the kept device is read again, and the ORM
# query was ~15 % of a booking request's CPU (bench/booking.py).
_device_t = cast(Table, KioskDevice.__table__)
_ENROLLED = select(_device_t.c.id, _device_t.c.name).where(_device_t.c.secret_hash == bindparam("secret_hash"), _device_t.c.revoked_at.is_(None))


def _enrolled(session: Session, secret_hash: str) -> Any:
    """(id, name) of the enrolled device with this secret hash, or None. On SQLite outside a
    transaction, read on a pooled connection of its own in autocommit (as kiosk.cache's check):
    no read transaction is left open for the request's unit of work to end first."""
    engine = session.get_bind()
    if engine.dialect.name == "sqlite" and not session.in_transaction():
        pooled = engine.raw_connection()
        try:
            return pooled.driver_connection.execute(_ENROLLED_SQL, (secret_hash,)).fetchone()
        finally:
            pooled.close()
    return session.connection().execute(_ENROLLED, {"secret_hash": secret_hash}).first()


_ENROLLED_SQL = "SELECT id, name FROM kiosk_device WHERE secret_hash = ? AND revoked_at IS NULL"


def _lookup(secret: str | None) -> EnrolledDevice | None:
    from kiosk.devices.services import MAX_SECRET_LENGTH, hash_secret

    if not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    session = db.session()
    generation = commit_generation.check(session)
    secret_hash = hash_secret(secret)
    key = (str(session.get_bind().url), secret_hash)
    if generation is not None:
        kept = _kept.get(key)
        if kept is not None and kept[0] == generation:
            return kept[1]
    row = _enrolled(session, secret_hash)
    if row is None:
        return None
    found = EnrolledDevice(row[0], row[1])
    if generation is not None:
        with _kept_lock:
            if generation == commit_generation.value:  # else a commit landed while reading: keep nothing
                if len(_kept) >= MAX_KEPT_DEVICES:
                    _kept.clear()
                _kept[key] = (generation, found)
    return found


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
