import pytest
from sqlalchemy import select

from kiosk.staff.models import AuditEntry, StaffRole
from kiosk.staff.services import StaffError, authenticate, create_staff_user, set_active


def test_create_and_authenticate(session):
    user = create_staff_user(session, "  Wang.Li ", "correct-horse-1", "staff", display_name="王丽")
    session.commit()
    assert user.username == "wang.li"
    assert user.password_hash != "correct-horse-1"
    assert authenticate(session, "WANG.LI", "correct-horse-1").id == user.id
    assert authenticate(session, "wang.li", "wrong-password") is None
    assert authenticate(session, "nobody", "correct-horse-1") is None
    assert user.last_login_at is not None


@pytest.mark.parametrize(
    "username, password, role, code",
    [
        ("ab", "correct-horse-1", "staff", "bad_username"),
        ("王丽", "correct-horse-1", "staff", "bad_username"),
        ("x" * 41, "correct-horse-1", "staff", "bad_username"),
        ("wang.li", "short", "staff", "short_password"),
        ("wang.li", "correct-horse-1", "superuser", "bad_role"),
    ],
)
def test_bad_accounts_are_refused_and_nothing_is_written(session, username, password, role, code):
    with pytest.raises(StaffError) as info:
        create_staff_user(session, username, password, role)
    assert info.value.code == code
    session.rollback()
    assert session.scalars(select(AuditEntry)).all() == []


def test_duplicate_username_is_a_conflict(session):
    create_staff_user(session, "wang.li", "correct-horse-1", "staff")
    session.commit()
    with pytest.raises(StaffError) as info:
        create_staff_user(session, "Wang.Li", "another-pass-2", "admin")
    assert (info.value.code, info.value.status) == ("duplicate_username", 409)


def test_roles_rank_admin_above_staff(session):
    admin = create_staff_user(session, "chen.admin", "correct-horse-1", StaffRole.ADMIN)
    staff = create_staff_user(session, "li.staff", "correct-horse-1", StaffRole.STAFF)
    assert admin.has_role(StaffRole.STAFF) and admin.has_role(StaffRole.ADMIN)
    assert staff.has_role(StaffRole.STAFF) and not staff.has_role(StaffRole.ADMIN)


def test_inactive_users_cannot_log_in_and_admins_cannot_deactivate_themselves(session):
    admin = create_staff_user(session, "chen.admin", "correct-horse-1", "admin")
    staff = create_staff_user(session, "li.staff", "correct-horse-1", "staff")
    set_active(session, staff, False, actor=admin)
    assert authenticate(session, "li.staff", "correct-horse-1") is None
    with pytest.raises(StaffError) as info:
        set_active(session, admin, False, actor=admin)
    assert info.value.code == "self_deactivate"
    actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["staff.create", "staff.create", "staff.deactivate"]


def test_an_unknown_username_is_checked_against_a_hash_as_costly_as_a_real_one():
    """authenticate() checks the password against _DUMMY_HASH when the name is unknown, so that
    a wrong name takes as long as a wrong password. The hash is a constant (made at import it
    cost every process start a scrypt): it must be werkzeug's default method with the default
    cost, or an unknown name would answer faster (fails if werkzeug's default changes)."""
    from werkzeug.security import check_password_hash, generate_password_hash

    from kiosk.staff.services import _DUMMY_HASH

    assert _DUMMY_HASH.split("$")[0] == generate_password_hash("x").split("$")[0]
    assert check_password_hash(_DUMMY_HASH, "not-a-real-password")


def test_a_failed_login_keeps_an_existing_username_but_only_a_hash_of_anything_else(session):
    """Without record_failed_login's existence check the typed text (here a password typed in the
    username box) was stored verbatim; tried by storing the normalised name unconditionally."""
    from kiosk.staff.services import record_failed_login

    create_staff_user(session, "wang.li", "correct-horse-1", "staff")
    record_failed_login(session, " Wang.Li ")
    record_failed_login(session, "MySecret-Passw0rd!")
    session.commit()
    known, unknown = session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.login_failed").order_by(AuditEntry.id))
    assert (known.target, known.actor_name, known.actor_id) == ("wang.li", "web-login", None)
    assert unknown.target.startswith("unknown:") and len(unknown.target) == len("unknown:") + 10
    assert "secret" not in unknown.target.lower() and "passw0rd" not in unknown.target.lower()


@pytest.mark.parametrize("raw", ["evil\r\nstaff.login ok", "name\u202egnp.exe", "a\u2066b\u2069", "nul\x00here", "tab\tx"])
def test_control_and_bidi_characters_never_reach_an_audit_entry_raw(session, raw):
    """Tried without clean_audit_text: the CR/LF and U+202E went into the row as typed."""
    from kiosk.staff.services import record_audit

    record_audit(session, None, "test.action", target=raw, detail=raw, remote_addr=raw)
    session.commit()
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "test.action"))
    for text in (entry.target, entry.detail, entry.remote_addr):
        assert not any(ch in text for ch in "\r\n\t\x00\u202e\u2066\u2069"), text
        assert "\\u" in text
