"""Changing a staff password: one's own (current password first), an administrator's reset of
another account, and `kiosk staff password`. Each ends the account's other sessions."""

from sqlalchemy import select
from werkzeug.security import check_password_hash

from kiosk.cli import main as kiosk_cli
from kiosk.staff.models import AuditEntry, StaffUser
from tests.helpers import csrf_token, login


def _password_hash(session, username):
    session.rollback()
    return session.scalar(select(StaffUser.password_hash).where(StaffUser.username == username))


def _change(client, current, new, again=None):
    token = csrf_token(client, "/staff/password")
    return client.post(
        "/staff/password",
        data={"current_password": current, "new_password": new, "confirm_password": new if again is None else again, "csrf_token": token},
    )


def test_own_password_change_keeps_this_session_and_ends_the_others(app, client, session, make_staff):
    make_staff("wang.li", "correct-horse-1", "staff")
    other = app.test_client()
    login(client, "wang.li", "correct-horse-1")
    login(other, "wang.li", "correct-horse-1")
    assert "修改我的密码" in client.get("/staff/password").get_data(as_text=True)

    response = _change(client, "correct-horse-1", "new-battery-2")
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    assert "密码已修改" in client.get("/staff/").get_data(as_text=True)
    assert client.get("/staff/").status_code == 200  # this browser goes on
    assert other.get("/staff/").status_code == 302  # the other one is logged out
    assert check_password_hash(_password_hash(session, "wang.li"), "new-battery-2")
    assert login(app.test_client(), "wang.li", "correct-horse-1").status_code == 401
    assert login(app.test_client(), "wang.li", "new-battery-2").status_code == 302
    assert "staff.password" in session.scalars(select(AuditEntry.action)).all()


def test_refused_changes_say_why_and_change_nothing(client, session, make_staff):
    make_staff("wang.li", "correct-horse-1", "staff")
    login(client, "wang.li", "correct-horse-1")
    before = _password_hash(session, "wang.li")
    cases = [
        (("wrong-one-00", "new-battery-2"), "当前密码不正确"),
        (("correct-horse-1", "short"), "至少"),
        (("correct-horse-1", "correct-horse-1"), "不能与旧密码相同"),
        (("correct-horse-1", "new-battery-2", "new-battery-3"), "两次输入的新密码不一致"),
    ]
    for args, text in cases:
        response = _change(client, *args)
        assert response.status_code in (400, 422), args
        assert text in response.get_data(as_text=True), args
    assert _password_hash(session, "wang.li") == before
    assert client.get("/staff/").status_code == 200  # still logged in


def test_admin_resets_another_password_and_staff_cannot(app, client, session, make_staff):
    make_staff("li.staff", "correct-horse-1", "staff")
    admin = make_staff("chen.admin", "correct-horse-2", "admin")
    staff_id = session.scalar(select(StaffUser.id).where(StaffUser.username == "li.staff"))
    staff_client = app.test_client()
    login(staff_client, "li.staff", "correct-horse-1")
    # A staff user cannot reset someone else's password.
    token = csrf_token(staff_client, "/staff/password")
    path = f"/staff/users/{admin.id}/password"
    assert staff_client.post(path, data={"new_password": "x" * 10, "confirm_password": "x" * 10, "csrf_token": token}).status_code == 403

    login(client, "chen.admin", "correct-horse-2")
    assert "设置新密码" in client.get("/staff/users").get_data(as_text=True)
    token = csrf_token(client, f"/staff/users/{staff_id}/password")
    response = client.post(
        f"/staff/users/{staff_id}/password", data={"new_password": "fresh-start-3", "confirm_password": "fresh-start-3", "csrf_token": token}
    )
    assert response.status_code == 302
    assert staff_client.get("/staff/").status_code == 302  # their session ended
    assert login(app.test_client(), "li.staff", "fresh-start-3").status_code == 302
    assert client.get("/staff/users/999999/password").status_code == 404
    session.rollback()  # a fresh read: the reset was written by the app's own transaction
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.password_reset")).one()
    assert entry.actor_name == "chen.admin" and entry.target == "li.staff"


def test_cli_sets_a_new_password(app, session, make_staff):
    make_staff("wang.li", "correct-horse-1", "staff")
    runner = app.test_cli_runner()
    result = runner.invoke(kiosk_cli, ["staff", "password", "wang.li", "--password", "cli-chosen-4"])
    assert result.exit_code == 0, result.output
    assert check_password_hash(_password_hash(session, "wang.li"), "cli-chosen-4")
    result = runner.invoke(kiosk_cli, ["staff", "password", "nobody", "--password", "cli-chosen-4"])
    assert result.exit_code != 0 and "没有名为 nobody" in result.output
