"""Staff sessions end on the server (issue 8, "Logout does not end a session"; docs/security.md).

Checked to fail without the safeguard: with the session_version check removed from
kiosk.staff.sessions.load_user, the copied cookie still opens /staff/ after logout,
deactivation and password change; without the idle check in staff.access, the 16-minute-old
session still works; without the csrf_token pop at login the token stays the same.
"""

from __future__ import annotations

import time

from kiosk.staff.models import StaffUser
from kiosk.staff.sessions import change_password
from tests.helpers import csrf_token, login, post


def copy_session(app, source):
    """A second browser holding a copy of ``source``'s session cookie (as an attacker would)."""
    thief = app.test_client()
    thief.set_cookie("session", source.get_cookie("session").value)
    return thief


def test_a_cookie_copied_before_logout_is_refused_after_it(app, client, make_staff):
    make_staff()
    login(client, "wang.li", "correct-horse-1")
    thief = copy_session(app, client)
    assert thief.get("/staff/").status_code == 200
    post(client, "/staff/logout", token_from="/staff/")
    response = thief.get("/staff/")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_deactivation_and_password_change_end_existing_sessions(app, client, session, make_staff):
    admin = make_staff("admin.a", role="admin")
    user = make_staff("wang.li")
    login(client, "wang.li", "correct-horse-1")
    assert client.get("/staff/").status_code == 200
    change_password(session, session.get(StaffUser, user.id), "a-new-password-9", actor=admin)
    session.commit()
    assert client.get("/staff/").status_code == 302
    login(client, "wang.li", "a-new-password-9")
    assert client.get("/staff/").status_code == 200
    desk = app.test_client()
    login(desk, "admin.a", "correct-horse-1")
    post(desk, f"/staff/users/{user.id}/active", {"active": "0"}, token_from="/staff/users")
    assert client.get("/staff/").status_code == 302


def test_staff_session_times_out_after_inactivity(app, client, make_staff, monkeypatch):
    make_staff()
    login(client, "wang.li", "correct-horse-1")
    assert client.get("/staff/").status_code == 200
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 14 * 60)
    assert client.get("/staff/").status_code == 200  # 14 minutes: still fine, and refreshed
    monkeypatch.setattr(time, "time", lambda: real() + 14 * 60 + 16 * 60)
    response = client.get("/staff/")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_idle_timeout_is_configurable(app, client, make_staff, monkeypatch):
    app.config["STAFF_IDLE_MINUTES"] = 60
    make_staff()
    login(client, "wang.li", "correct-horse-1")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 30 * 60)
    assert client.get("/staff/").status_code == 200


def test_csrf_token_rotates_at_login_and_cookie_lifetime_is_bounded(app, client, make_staff):
    make_staff()
    before = csrf_token(client, "/staff/login")
    response = login(client, "wang.li", "correct-horse-1")
    assert response.status_code == 302
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith("session="))
    assert "Expires=" in cookie  # a permanent session: bounded by PERMANENT_SESSION_LIFETIME
    assert app.permanent_session_lifetime.total_seconds() <= 24 * 3600
    assert csrf_token(client, "/staff/") != before
