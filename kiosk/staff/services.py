"""Staff accounts, authentication and the audit log."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.db import utcnow
from kiosk.errors import KioskError
from kiosk.i18n import _l
from kiosk.staff.models import AuditEntry, StaffRole, StaffUser

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,39}$")
MIN_PASSWORD_LENGTH = 8
# Checked against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class StaffError(KioskError):
    pass


def normalise_username(username: str) -> str:
    return username.strip().lower()


def create_staff_user(
    session: Session,
    username: str,
    password: str,
    role: StaffRole | str,
    *,
    display_name: str = "",
    actor: StaffUser | None = None,
    remote_addr: str = "",
) -> StaffUser:
    username = normalise_username(username)
    if not USERNAME_PATTERN.match(username):
        raise StaffError("bad_username", _l("Username: 3–40 lower-case letters, digits, dots, dashes or underscores, starting with a letter or digit."))
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError("short_password", _l("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH))
    try:
        role = StaffRole(role)
    except ValueError:
        raise StaffError("bad_role", _l("Unknown role.")) from None
    display_name = display_name.strip()[:60]
    if not display_name.isprintable():
        raise StaffError("bad_display_name", _l("This contains characters that cannot be used."))
    if session.scalar(select(func.count()).select_from(StaffUser).where(StaffUser.username == username)):
        raise StaffError("duplicate_username", _l("That username is already taken."), status=409)
    user = StaffUser(username=username, display_name=display_name or username, password_hash=generate_password_hash(password), role=role)
    session.add(user)
    session.flush()
    record_audit(session, actor, "staff.create", target=username, detail=f"role={role.value}", remote_addr=remote_addr)
    return user


def authenticate(session: Session, username: str, password: str) -> StaffUser | None:
    user = session.scalar(select(StaffUser).where(StaffUser.username == normalise_username(username)))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    user.last_login_at = utcnow()
    return user


def set_active(session: Session, user: StaffUser, active: bool, *, actor: StaffUser | None, remote_addr: str = "") -> None:
    if actor is not None and actor.id == user.id and not active:
        raise StaffError("self_deactivate", _l("You cannot deactivate your own account."))
    user.active = active
    if not active:
        from kiosk.staff.sessions import end_sessions

        end_sessions(user)
    record_audit(session, actor, "staff.activate" if active else "staff.deactivate", target=user.username, remote_addr=remote_addr)


def record_audit(session: Session, actor: StaffUser | None, action: str, *, target: str = "", detail: str = "", remote_addr: str = "") -> AuditEntry:
    entry = AuditEntry(
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else "cli",
        action=action,
        target=target[:120],
        detail=detail,
        remote_addr=remote_addr[:64],
    )
    session.add(entry)
    return entry


def recent_audit(session: Session, limit: int = 200) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))


def list_staff(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.username)))
