"""Staff sessions that end when they should (docs/security.md).

A Flask session is a signed cookie: logging out only forgets it in the browser, and a copy
taken before keeps working. The user's ``session_version`` is part of the id in the cookie
(StaffUser.get_id) and is checked on every request (load_user), so bumping it ends every
session of that user on the server: at logout, password change and deactivation. Staff
sessions also end after STAFF_IDLE_MINUTES without a request (kiosk.staff.access).
"""

from __future__ import annotations

from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from kiosk.db import write_transaction
from kiosk.staff.models import StaffUser

MAX_ID_LENGTH = 24


def load_user(session: Session, raw_id: str) -> StaffUser | None:
    """The user a session cookie names, if the session has not been ended since."""
    user_id, _sep, version = (raw_id or "")[:MAX_ID_LENGTH].partition(":")
    if not (user_id.isascii() and user_id.isdigit() and version.isascii() and version.isdigit()):
        return None
    user = session.get(StaffUser, int(user_id))
    if user is None or user.session_version != int(version):
        return None
    return user


def end_sessions(user: StaffUser) -> None:
    """Every session of ``user`` (on any browser) stops working at its next request."""
    user.session_version = (user.session_version or 0) + 1


def change_password(session: Session, user: StaffUser, password: str, *, actor: StaffUser | None, remote_addr: str = "") -> None:
    from kiosk.i18n import _l
    from kiosk.staff.services import MIN_PASSWORD_LENGTH, StaffError, record_audit

    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError("short_password", _l("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH))
    password_hash = generate_password_hash(password)  # slow: before taking the write lock
    with write_transaction(session):
        user.password_hash = password_hash
        end_sessions(user)
        record_audit(session, actor, "staff.password", target=user.username, remote_addr=remote_addr)
