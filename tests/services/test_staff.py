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
