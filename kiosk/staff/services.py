"""Staff accounts, authentication and the audit log."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.db import utcnow, write_transaction
from kiosk.errors import KioskError
from kiosk.i18n import _l
from kiosk.staff.models import AuditEntry, StaffRole, StaffUser

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,39}$")
MIN_PASSWORD_LENGTH = 8
# Checked against when the username is unknown, so a wrong name costs as long as a wrong password.
# Made once with generate_password_hash("not-a-real-password") rather than at import: its scrypt
# was ~0.2 s of every `kiosk` command, server start and gunicorn worker. Its method and cost
# must stay werkzeug's default (tests/services/test_staff.py checks that they still are).
_DUMMY_HASH = "scrypt:32768:8:1$zkBq6HcAFa4YJFtw$c6ad91ce484b1d440fba69d906a82bb60528769e8e99dbcdfe63c8afd4df19b80686e335fbe1949c3162ce15e9febdb2c187b0dadd1375aea575ba3fedee920d"


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
        raise StaffError(
            "bad_username", _l("Username: 3–40 lower-case letters, digits, dots, dashes or underscores, starting with a letter or digit."), field="username"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError("short_password", _l("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH), field="password")
    try:
        role = StaffRole(role)
    except ValueError:
        raise StaffError("bad_role", _l("Unknown role."), field="role") from None
    display_name = display_name.strip()[:60]
    if not display_name.isprintable():
        raise StaffError("bad_display_name", _l("This contains characters that cannot be used."), field="display_name")
    password_hash = generate_password_hash(password)  # slow: hashed before taking the write lock
    with write_transaction(session):
        if session.scalar(select(func.count()).select_from(StaffUser).where(StaffUser.username == username)):
            raise StaffError("duplicate_username", _l("That username is already taken."), status=409, field="username")
        user = StaffUser(username=username, display_name=display_name or username, password_hash=password_hash, role=role)
        session.add(user)
        session.flush()
        record_audit(session, actor, "staff.create", target=username, detail=f"role={role.value}", remote_addr=remote_addr)
    return user


def authenticate(session: Session, username: str, password: str) -> StaffUser | None:
    """The active user with this name and password (its last login time set), or None.
    A step of log_in(), which writes the result inside its unit of work."""
    user = session.scalar(select(StaffUser).where(StaffUser.username == normalise_username(username)))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    user.last_login_at = utcnow()
    return user


def log_in(session: Session, username: str, password: str, *, remote_addr: str = "") -> StaffUser | None:
    """Check a login and audit it, success or failure, in one unit of work."""
    with write_transaction(session):
        user = authenticate(session, username, password)
        if user is None:
            record_failed_login(session, username, remote_addr=remote_addr)
        else:
            record_audit(session, user, "staff.login", remote_addr=remote_addr)
    return user


def log_out(session: Session, user: StaffUser, *, remote_addr: str = "") -> None:
    """Audit the logout and end every session of this user on the server (a copied cookie too)."""
    from kiosk.staff.sessions import end_sessions

    with write_transaction(session):
        end_sessions(user)
        record_audit(session, user, "staff.logout", remote_addr=remote_addr)


def set_active(session: Session, user: StaffUser, active: bool, *, actor: StaffUser | None, remote_addr: str = "") -> None:
    if actor is not None and actor.id == user.id and not active:
        raise StaffError("self_deactivate", _l("You cannot deactivate your own account."))
    with write_transaction(session):
        user.active = active
        if not active:
            from kiosk.staff.sessions import end_sessions

            end_sessions(user)
        record_audit(session, actor, "staff.activate" if active else "staff.deactivate", target=user.username, remote_addr=remote_addr)


def get_staff_user(session: Session, user_id: int) -> StaffUser | None:
    return session.get(StaffUser, user_id)


# Who acts when no staff user is logged in: the channel the action came through.
CHANNEL_CLI = "cli"
CHANNEL_KIOSK = "kiosk"
CHANNEL_WEB_LOGIN = "web-login"

# Bidirectional controls reorder how a log line reads (an "evil" name shown backwards).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_audit_text(text: str) -> str:
    """What may go into an audit entry: control and bidi characters shown as escapes, never raw.

    A CR/LF would forge a new line in an exported or tailed log; a bidi override would make an
    entry read differently from what it says.
    """
    return "".join(f"\\u{ord(ch):04x}" if ch in _BIDI_CONTROLS or (unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")) else ch for ch in text)


def record_audit(
    session: Session,
    actor: StaffUser | None,
    action: str,
    *,
    target: str = "",
    detail: str = "",
    remote_addr: str = "",
    channel: str = CHANNEL_CLI,
) -> AuditEntry:
    """Add an audit entry in the caller's transaction.

    ``channel`` names who acted when no staff user did (the kiosk, a login attempt, the CLI).
    """
    entry = AuditEntry(
        actor_id=actor.id if actor else None,
        actor_name=clean_audit_text(actor.username if actor else channel)[:60],
        action=action,
        target=clean_audit_text(target)[:120],
        detail=clean_audit_text(detail),
        remote_addr=clean_audit_text(remote_addr)[:64],
    )
    session.add(entry)
    return entry


def record_failed_login(session: Session, typed_username: str, *, remote_addr: str = "") -> AuditEntry:
    """Audit a refused login without keeping what was typed unless it names a real account.

    A password typed into the username box must not land in the log: an unknown name is kept
    only as a short hash, enough to see the same attempt repeated.
    """
    username = normalise_username(typed_username or "")
    exists = session.scalar(select(func.count()).select_from(StaffUser).where(StaffUser.username == username))
    target = username if exists else "unknown:" + hashlib.sha256(username.encode("utf-8")).hexdigest()[:10]
    return record_audit(session, None, "staff.login_failed", target=target, remote_addr=remote_addr, channel=CHANNEL_WEB_LOGIN)


def recent_audit(session: Session, limit: int = 200, *, action: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(session.scalars(query))


def list_staff(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.username)))
