"""Kiosk-only routes answer only an enrolled kiosk device (issue 8, High; docs/security.md).

Checked to fail without the safeguard: with kiosk_blueprint's before_request removed, the
URL-map walk gets 200/400/404 instead of 403 on every route and the rate-limit tests get
no 429 (tried while writing them).
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from kiosk.db import utcnow
from kiosk.devices.access import DEVICE_COOKIE, OPEN_ENDPOINTS
from kiosk.devices.models import KioskDevice
from kiosk.devices.services import create_enrol_code, hash_secret
from tests.helpers import TEST_DEVICE_SECRET, csrf_token, login, post

PUBLIC_PREFIXES = ("/c/", "/static/", "/healthz", "/staff", "/device/enrol/")
NOT_ENROLLED = "此设备未登记为自助终端"


def kiosk_only_rules(app):
    return [r for r in app.url_map.iter_rules() if not r.rule.startswith(PUBLIC_PREFIXES) and r.rule != "/c/checkin" and r.endpoint not in OPEN_ENDPOINTS]


def test_every_kiosk_only_route_refuses_a_browser_that_is_not_enrolled(app, client):
    stranger = app.test_client(enrolled=False)
    rules = kiosk_only_rules(app)
    endpoints = {r.endpoint for r in rules}
    assert {
        "checkin.kiosk_phone",
        "checkin.keypad",
        "checkin.screen",
        "checkin.index",
        "scan.scan",
        "points.index",
        "points.redeem",
        "points.confirm",
    } <= endpoints
    assert len(rules) >= 14
    # The stranger has a valid CSRF token of its own (from a public page): still 403.
    token = csrf_token(stranger, "/staff/login")
    for rule in rules:
        path = re.sub(r"<(int:)?\w+>", "1", rule.rule)
        method = "GET" if "GET" in rule.methods else "POST"
        response = stranger.open(path, method=method, data={"phone": "13900000002", "code": "x"}, headers={"X-CSRFToken": token})
        assert response.status_code == 403, (path, response.status_code)
        assert NOT_ENROLLED in response.get_data(as_text=True), path
    # The enrolled kiosk is not refused as a device on the same pages.
    for rule in rules:
        if "GET" in rule.methods:
            assert NOT_ENROLLED not in client.get(re.sub(r"<(int:)?\w+>", "1", rule.rule)).get_data(as_text=True), rule.rule


def test_phone_pages_health_and_staff_login_stay_public(app):
    stranger = app.test_client(enrolled=False)
    assert stranger.get("/healthz").status_code == 200
    assert stranger.get("/staff/login").status_code == 200
    assert stranger.get("/c/not-a-token").status_code in (400, 403, 404, 409, 410, 422)
    assert NOT_ENROLLED not in stranger.get("/c/not-a-token").get_data(as_text=True)


def test_keypad_check_in_from_a_second_browser_is_refused_and_writes_nothing(app, session, open_activity):
    from kiosk.checkin.models import CheckIn

    stranger = app.test_client(enrolled=False)
    token = csrf_token(stranger, "/staff/login")
    response = stranger.post(f"/checkin/{open_activity.id}/phone", data={"phone": "13900000002"}, headers={"X-CSRFToken": token})
    assert response.status_code == 403
    assert session.scalar(select(CheckIn).limit(1)) is None


def test_staff_enrol_this_browser_cookie_survives_idle_reset_and_revocation_ends_it(app, session, make_staff):
    make_staff()
    kiosk = app.test_client(enrolled=False)
    assert kiosk.get("/").status_code == 403
    login(kiosk, "wang.li", "correct-horse-1")
    page = kiosk.get("/staff/devices/")
    assert page.status_code == 200
    response = post(kiosk, "/staff/devices/enrol", {"name": "大厅一号机"}, token_from="/staff/devices/")
    assert response.status_code == 302
    cookie_header = next(v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith(DEVICE_COOKIE + "="))
    assert "HttpOnly" in cookie_header and "SameSite=Strict" in cookie_header and "Max-Age=" in cookie_header
    secret = cookie_header.split(";")[0].split("=", 1)[1]
    device = session.scalar(select(KioskDevice).where(KioskDevice.name == "大厅一号机"))
    assert device.secret_hash == hash_secret(secret) and secret not in (device.secret_hash or "")
    assert kiosk.get("/").status_code == 200
    # The idle reset clears the Flask session; the device cookie is separate and stays.
    assert post(kiosk, "/session/end").status_code == 204
    assert kiosk.get("/points").status_code == 200
    # Revoked on the staff page: the same browser is refused at once.
    other = app.test_client(enrolled=False)
    login(other, "wang.li", "correct-horse-1")
    post(other, f"/staff/devices/{device.id}/revoke", token_from="/staff/devices/")
    assert kiosk.get("/points").status_code == 403
    listing = other.get("/staff/devices/").get_data(as_text=True)
    assert "大厅一号机" in listing and "已撤销" in listing
    assert re.search(r"<td>今天 \d\d:\d\d</td>", listing)  # when it was registered, in words, not ISO


def test_enrolment_cookie_is_secure_behind_tls(app, session, make_staff):
    app.config["SESSION_COOKIE_SECURE"] = True
    make_staff()
    kiosk = app.test_client(enrolled=False)
    login(kiosk, "wang.li", "correct-horse-1")
    response = post(kiosk, "/staff/devices/enrol", {"name": "tls"}, token_from="/staff/devices/")
    cookie_header = next(v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith(DEVICE_COOKIE + "="))
    assert "Secure" in cookie_header


def test_one_time_enrol_link_works_once_and_expires(app, session):
    _device, code = create_enrol_code(session, "演示")
    session.commit()
    browser = app.test_client(enrolled=False)
    response = browser.get(f"/device/enrol/{code}")
    assert response.status_code == 302
    assert browser.get("/").status_code == 200
    again = app.test_client(enrolled=False)
    assert again.get(f"/device/enrol/{code}").status_code == 403
    assert again.get("/").status_code == 403
    _old, stale = create_enrol_code(session, "过期", now=utcnow() - timedelta(minutes=11))
    session.commit()
    assert again.get(f"/device/enrol/{stale}").status_code == 403


def test_keypad_check_ins_are_rate_limited_per_number_and_per_device(app, open_activity):
    app.config["NUMBER_CHECKIN_RATE_LIMIT"] = "3 per minute"
    app.config["KIOSK_CHECKIN_RATE_LIMIT"] = "8 per minute"
    kiosk = app.test_client()
    path = f"/checkin/{open_activity.id}/phone"
    statuses = [post(kiosk, path, {"phone": "13900000002"}, htmx=True).status_code for _ in range(4)]
    assert statuses[-1] == 429 and 429 not in statuses[:3]
    # Other numbers from the same device: the device's own budget runs out too.
    statuses = [post(kiosk, path, {"phone": f"1390000{i:04d}"}, htmx=True).status_code for i in range(10, 16)]
    assert 429 in statuses


def test_test_device_is_the_only_one_enrolled(session):
    """The fixtures' enrolled device (tests/conftest.py) is a real row, stored as a hash."""
    rows = session.scalars(select(KioskDevice)).all()
    assert [d.secret_hash for d in rows] == [hash_secret(TEST_DEVICE_SECRET)]
