import re

from sqlalchemy import select

from kiosk.staff.models import AuditEntry, StaffUser
from tests.helpers import csrf_token, login


def test_every_staff_route_needs_a_login(app, client):
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/staff") and r.endpoint != "staff.login"]
    assert len(rules) >= 15
    for rule in rules:
        path = re.sub(r"<(int:)?\w+>", "1", rule.rule)
        method = "GET" if "GET" in rule.methods else "POST"
        response = client.open(path, method=method, headers={"X-CSRFToken": csrf_token(client)})
        assert response.status_code == 302, (path, response.status_code)
        assert "/staff/login" in response.headers["Location"]


def test_login_logout_and_audit(client, session, make_staff):
    make_staff("wang.li", "correct-horse-1", "staff")
    response = login(client, "wang.li", "correct-horse-1")
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    dashboard = client.get("/staff/").get_data(as_text=True)
    assert "您好，王丽" in dashboard
    token = csrf_token(client, "/staff/")
    assert client.post("/staff/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/staff/").status_code == 302
    actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["staff.create", "staff.login", "staff.logout"]


def test_wrong_password_is_refused_and_audited(client, session, make_staff):
    make_staff("wang.li", "correct-horse-1")
    response = login(client, "wang.li", "not-the-password")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert session.scalar(select(AuditEntry.action).order_by(AuditEntry.id.desc())) == "staff.login_failed"


def test_staff_cannot_reach_admin_routes_but_admin_can(client, make_staff):
    make_staff("li.staff", "correct-horse-1", "staff")
    make_staff("chen.admin", "correct-horse-2", "admin")
    login(client, "li.staff", "correct-horse-1")
    for path in ("/staff/users", "/staff/audit"):
        response = client.get(path)
        assert response.status_code == 403
        html = response.get_data(as_text=True)
        # The staff layout with a way back to the dashboard, not the visitor shell (长辈模式, 返回首页).
        assert "此页面仅限管理员使用" in html and 'href="/staff/"' in html and "返回工作台" in html
        assert "长辈模式" not in html and "btn-home" not in html
    client.post("/staff/logout", data={"csrf_token": csrf_token(client, "/staff/")})
    login(client, "chen.admin", "correct-horse-2")
    assert client.get("/staff/users").status_code == 200
    assert "staff.login" in client.get("/staff/audit").get_data(as_text=True)


def test_admin_creates_and_deactivates_staff(client, session, make_staff):
    make_staff("chen.admin", "correct-horse-2", "admin")
    login(client, "chen.admin", "correct-horse-2")
    token = csrf_token(client, "/staff/users")
    data = {"csrf_token": token, "username": "zhao.min", "display_name": "赵敏", "password": "another-pass-3", "role": "staff"}
    assert client.post("/staff/users", data=data).status_code == 302
    again = client.post("/staff/users", data=data)
    assert again.status_code == 409 and "该用户名已被使用" in again.get_data(as_text=True)
    short = client.post("/staff/users", data=data | {"username": "qian.yu", "password": "short"})
    assert short.status_code == 422 and "密码至少需要 8 个字符" in short.get_data(as_text=True)
    user = session.scalar(select(StaffUser).where(StaffUser.username == "zhao.min"))
    client.post(f"/staff/users/{user.id}/active", data={"csrf_token": token, "active": "0"})
    session.rollback()  # end this test's read snapshot (WAL) to see the request's commit
    assert user.active is False
    assert login(client, "zhao.min", "another-pass-3").status_code == 401
    assert session.scalar(select(StaffUser).where(StaffUser.username == "qian.yu")) is None


def test_login_form_without_csrf_token_is_refused(client, make_staff):
    make_staff("wang.li", "correct-horse-1")
    response = client.post("/staff/login", data={"username": "wang.li", "password": "correct-horse-1"})
    assert response.status_code == 400 and "页面已过期" in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_login_is_rate_limited(client, make_staff):
    make_staff("wang.li", "correct-horse-1")
    statuses = [login(client, "wang.li", f"guess-{i}").status_code for i in range(6)]
    assert statuses == [401] * 5 + [429]
    limited = login(client, "wang.li", "correct-horse-1")
    assert limited.status_code == 429 and "操作太频繁" in limited.get_data(as_text=True)


def test_login_never_redirects_off_site(client, make_staff):
    make_staff("wang.li", "correct-horse-1")
    token = csrf_token(client, "/staff/login")
    response = client.post("/staff/login?next=//evil.example/x", data={"username": "wang.li", "password": "correct-horse-1", "csrf_token": token})
    assert response.headers["Location"] == "/staff/"


def test_a_short_password_is_shown_under_the_password_field_and_tied_to_it(client, make_staff):
    """Before show_error routed StaffError.field, the message sat under 用户名 and 密码 was unmarked."""
    make_staff("chen.admin", "correct-horse-2", "admin")
    login(client, "chen.admin", "correct-horse-2")
    token = csrf_token(client, "/staff/users")
    data = {"csrf_token": token, "username": "qian.yu", "display_name": "", "password": "short", "role": "staff"}
    html = client.post("/staff/users", data=data).get_data(as_text=True)
    assert re.search(r'<input[^>]*aria-describedby="password-error"[^>]*id="password"|<input[^>]*id="password"[^>]*aria-describedby="password-error"', html)
    assert re.search(r'id="password-error"[^>]*>密码至少需要 8 个字符', html)
    assert 'id="username-error"' not in html
    assert re.search(r'<input[^>]*aria-invalid="false"[^>]*id="username"|<input[^>]*id="username"[^>]*aria-invalid="false"', html)


def test_a_failed_web_login_is_audited_as_a_login_attempt_without_the_typed_secret(client, session, make_staff):
    make_staff("wang.li", "correct-horse-1")
    login(client, "wang.li", "not-the-password")
    login(client, "correct-horse-1", "x")  # the password typed into the username box
    entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.login_failed").order_by(AuditEntry.id)))
    assert [(e.actor_name, e.actor_id) for e in entries] == [("web-login", None), ("web-login", None)]
    assert entries[0].target == "wang.li"
    assert "horse" not in entries[1].target and entries[1].target.startswith("unknown:")


def test_a_missing_record_under_staff_keeps_the_staff_layout(client, make_staff):
    make_staff("li.staff", "correct-horse-1", "staff")
    login(client, "li.staff", "correct-horse-1")
    response = client.get("/staff/members/999999")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and "返回工作台" in html and "长辈模式" not in html


def test_please_log_in_first_is_a_notice_not_a_success(client):
    html = client.get("/staff/", follow_redirects=True).get_data(as_text=True)
    assert re.search(r'class="message message-info" role="status">请先登录。<', html)
