"""Staff sessions that end when they should (docs/security.md).

A Flask session is a signed cookie: logging out only forgets it in the browser, and a copy
taken before keeps working. The user's ``session_version`` is part of the id in the cookie
(StaffUser.get_id) and is checked on every request (load_user), so bumping it ends every
session of that user on the server: at logout, password change and deactivation. Staff
sessions also end after STAFF_IDLE_MINUTES without a request (kiosk.staff.access).
"""

from __future__ import annotations

from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

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


def change_password(
    session: Session,
    user: StaffUser,
    password: str,
    *,
    actor: StaffUser | None,
    current_password: str | None = None,
    remote_addr: str = "",
    field: str = "password",
) -> None:
    """Set a new password and end every session of ``user`` (a stolen cookie stops working).

    ``current_password``, when given (a user changing their own), must match first; an
    administrator resetting someone else's password, or the CLI, passes None.
    """
    from kiosk.i18n import _l
    from kiosk.staff.services import MIN_PASSWORD_LENGTH, StaffError, record_audit

    if current_password is not None and not check_password_hash(user.password_hash, current_password):
        raise StaffError("wrong_password", _l("The current password is not right."), field="current_password")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError("short_password", _l("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH), field=field)
    if check_password_hash(user.password_hash, password):
        raise StaffError("same_password", _l("The new password must differ from the old one."), field=field)
    password_hash = generate_password_hash(password)  # slow: before taking the write lock
    with write_transaction(session):
        user.password_hash = password_hash
        end_sessions(user)
        action = "staff.password" if actor is not None and actor.id == user.id else "staff.password_reset"
        record_audit(session, actor, action, target=user.username, remote_addr=remote_addr)
