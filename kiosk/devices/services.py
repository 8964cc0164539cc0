"""Enrolling, recognising and revoking kiosk devices. Plain functions over a Session."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.db import utcnow, write_transaction
from kiosk.devices.models import KioskDevice
from kiosk.errors import KioskError
from kiosk.i18n import _l
from kiosk.staff.models import StaffUser
from kiosk.staff.services import record_audit
from kiosk.validation import clean_text

ENROL_CODE_MINUTES = 10
MAX_SECRET_LENGTH = 200


class DeviceError(KioskError):
    pass


def hash_secret(secret: str) -> str:
    """The secrets are 256 random bits: a plain SHA-256 is enough (nothing to brute-force)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _name(raw: str | None) -> str:
    return clean_text(raw, 60, "name", error=DeviceError) or str(_l("Kiosk"))


def enrol_device(session: Session, name: str | None, *, actor: StaffUser | None, remote_addr: str = "") -> tuple[KioskDevice, str]:
    """A new enrolled device and its secret (to put in the browser's cookie, shown nowhere)."""
    secret = secrets.token_urlsafe(32)
    device = KioskDevice(name=_name(name), secret_hash=hash_secret(secret), enrolled_at=utcnow(), created_by=actor.username if actor else "cli")
    with write_transaction(session):
        session.add(device)
        session.flush()
        record_audit(session, actor, "device.enrol", target=f"device:{device.id}", detail=device.name, remote_addr=remote_addr)
    return device, secret


def create_enrol_code(session: Session, name: str | None, *, now: datetime | None = None, minutes: int = ENROL_CODE_MINUTES) -> tuple[KioskDevice, str]:
    """A pending device and a one-time code, valid ``minutes``, that enrols whoever opens it."""
    code = secrets.token_urlsafe(24)
    device = KioskDevice(name=_name(name), enrol_code_hash=hash_secret(code), enrol_expires_at=(now or utcnow()) + timedelta(minutes=minutes), created_by="cli")
    with write_transaction(session):
        session.add(device)
        session.flush()
        record_audit(session, None, "device.enrol_code", target=f"device:{device.id}", detail=device.name)
    return device, code


def redeem_enrol_code(session: Session, code: str | None, *, now: datetime | None = None, remote_addr: str = "") -> tuple[KioskDevice, str]:
    """Trade a one-time code for the device's secret; the code cannot be used again."""
    now = now or utcnow()
    code = (code or "")[:MAX_SECRET_LENGTH]
    secret = secrets.token_urlsafe(32)
    with write_transaction(session):
        # Read and consume the code under the write lock: two browsers opening one link get one device.
        device = session.scalar(select(KioskDevice).where(KioskDevice.enrol_code_hash == hash_secret(code))) if code else None
        if device is None or device.revoked_at is not None or device.enrol_expires_at is None or device.enrol_expires_at < now:
            raise DeviceError("enrol_code_invalid", _l("This enrolment link is not valid (links work once, for 10 minutes)."), status=403)
        device.secret_hash = hash_secret(secret)
        device.enrol_code_hash = None
        device.enrol_expires_at = None
        device.enrolled_at = now
        record_audit(session, None, "device.enrolled", target=f"device:{device.id}", detail=device.name, remote_addr=remote_addr)
    return device, secret


def revoke_device(session: Session, device_id: int, *, actor: StaffUser | None, remote_addr: str = "") -> KioskDevice:
    with write_transaction(session):
        device = session.get(KioskDevice, device_id)
        if device is None:
            raise DeviceError("unknown_device", _l("No such device."), status=404)
        if device.revoked_at is None:
            device.revoked_at = utcnow()
            device.secret_hash = None
            device.enrol_code_hash = None
            record_audit(session, actor, "device.revoke", target=f"device:{device.id}", detail=device.name, remote_addr=remote_addr)
    return device


def list_devices(session: Session) -> list[KioskDevice]:
    return list(session.scalars(select(KioskDevice).order_by(KioskDevice.revoked_at.is_not(None), KioskDevice.id.desc())))
