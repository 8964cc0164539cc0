"""Hostile inputs get a 4xx with a clear message, never a 500 (issue 8, Low; docs/security.md).

Each test was run against the code before its fix and failed there: the non-ASCII signature
raised TypeError (500), the huge id OverflowError (500), next= with CR/LF a 500 after login,
year 1 a 500, the 12000×12000 PNG was accepted, the zero-byte picture silently ignored, a NUL
byte stored, Host: evil.example printed into the poster, a pass from the future accepted, one
pass checked in four phones, the corrupt kiosk.toml a traceback, the missing SIGNING_KEY a
server saying ok, and `kiosk init` wrote a new signing key over a database with members.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from PIL import Image

from kiosk.checkin.models import CheckinMethod
from kiosk.checkin.services import CheckinError, ScannedCode, issue_pass, read_pass
from kiosk.db import utcnow
from kiosk.signing import TokenSigner
from tests.helpers import csrf_token, login, make_app, post, run

SIGNER = TokenSigner("k", purpose="p")


@pytest.mark.parametrize("token", ["C1.XH-CY-CY1.1.P.中", "M1.XH-CY-CY1.1.1.中", "a.中", "中.中", "\udcff.x"])
def test_non_ascii_signatures_are_refused_not_a_type_error(token):
    assert SIGNER.verify(token) is None


def test_non_ascii_tokens_over_http_get_a_4xx(client, open_activity):
    for path in ("/c/C1.XH-CY-CY1.1.P.中", "/c/a.中"):
        assert 400 <= client.get(path).status_code < 500
    response = post(client, "/scan", {"code": "M1.XH-CY-CY1.1.1.中"}, htmx=True)
    assert 400 <= response.status_code < 500
    response = client.post("/c/checkin", data={"pass": "a.中", "activity": str(open_activity.id), "phone": "13900000002"})
    assert 400 <= response.status_code < 500


def test_ids_above_two_to_the_63_are_not_found(client, make_staff):
    huge = 2**63
    for path in (f"/checkin/{huge}", f"/rewards/{huge}/picture", f"/checkin/{huge * 10}/keypad"):
        assert client.get(path).status_code == 404, path
    make_staff()
    login(client, "wang.li", "correct-horse-1")
    assert client.get(f"/staff/members/{huge}").status_code == 404
    assert client.get(f"/staff/activities/{huge}").status_code == 404


def test_next_with_cr_lf_goes_to_the_dashboard(client, make_staff):
    make_staff()
    token = csrf_token(client, "/staff/login")
    response = client.post("/staff/login?next=/staff/%0d%0aX:1", data={"username": "wang.li", "password": "correct-horse-1", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"


def test_year_one_dates_are_refused_on_the_form(client, make_staff):
    make_staff()
    login(client, "wang.li", "correct-horse-1")
    data = {
        "title": "书法",
        "category": "culture",
        "place": "",
        "starts_at": "0001-01-01T00:00",
        "ends_at": "0001-01-01T02:00",
        "points": "1",
        "policy": "once",
    }
    data |= {"opens_minutes_before": "30", "closes_minutes_after": "30"}
    response = post(client, "/staff/activities/new", data, token_from="/staff/activities/new")
    assert response.status_code == 422


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def test_huge_canvas_and_empty_pictures_are_refused(client, make_staff):
    make_staff()
    login(client, "wang.li", "correct-horse-1")
    bomb = png(12000, 12000)
    assert len(bomb) < 2 * 1024 * 1024
    for name, data in (("bomb.png", bomb), ("empty.png", b"")):
        token = csrf_token(client, "/staff/rewards/")
        response = client.post(
            "/staff/rewards/", data={"csrf_token": token, "name": f"伞{name}", "cost": "1", "stock": "1", "active": "y", "picture": (io.BytesIO(data), name)}
        )
        assert response.status_code == 422, name
    # Anything larger than MAX_CONTENT_LENGTH is refused before a view reads it.
    response = client.post("/staff/rewards/", data={"picture": (io.BytesIO(b"x" * (5 * 1024 * 1024)), "big.png")})
    assert response.status_code == 413


def test_nul_bytes_are_refused_in_notes_and_display_names(session, make_staff):
    from kiosk.members.services import register_member
    from kiosk.points.services import PointsError, correct_points
    from kiosk.staff.services import StaffError, create_staff_user

    admin = make_staff("admin.a", role="admin")
    member = register_member(session, name="张三", phone="13900000002", community="", age_band="60-69", consent=True, consent_version="t", actor=None)
    with pytest.raises(PointsError):
        correct_points(session, member, "5", "补\x00录", actor=admin)
    with pytest.raises(StaffError):
        create_staff_user(session, "li.si", "correct-horse-1", "staff", display_name="李\x00四")


def test_nul_bytes_are_refused_in_cancel_notes(session, make_staff):
    from kiosk.points.services import PointsError, cancel_redemption

    admin = make_staff("admin.a", role="admin")
    with pytest.raises(PointsError) as info:
        cancel_redemption(session, 1, actor=admin, note="取\x00消")
    assert info.value.code == "note_invalid"


def test_printed_codes_ignore_a_forged_host_header(app, open_activity):
    from kiosk.checkin.views import _poster_url

    with app.test_request_context("/staff/activities/1", headers={"Host": "evil.example"}):
        assert _poster_url(open_activity).startswith("http://127.0.0.1:8000/c/")
    with app.test_request_context("/staff/activities/1", headers={"Host": "localhost:8000"}):
        assert _poster_url(open_activity).startswith("http://localhost:8000/c/")
    app.config["PUBLIC_BASE_URL"] = "http://192.168.1.20:8000/"
    with app.test_request_context("/staff/activities/1", headers={"Host": "evil.example"}):
        assert _poster_url(open_activity).startswith("http://192.168.1.20:8000/c/")


def test_a_pass_from_the_future_is_refused():
    signer = TokenSigner("k", purpose="checkin-pass")
    now = utcnow()
    issued = issue_pass(ScannedCode(1, CheckinMethod.POSTER), signer, "XH", now + timedelta(hours=1))
    with pytest.raises(CheckinError) as info:
        read_pass(issued, signer, "XH", 1, now, 10)
    assert info.value.code == "token_expired"


def test_one_phone_pass_checks_in_a_few_numbers_not_many(app, open_activity):
    from kiosk.checkin.services import poster_token
    from tests.helpers import TEST_SIGNING_KEY

    app.config["PHONE_CHECKIN_RATE_LIMIT"] = "1000 per minute"
    phone = app.test_client(enrolled=False)
    html = phone.get(f"/c/{poster_token(open_activity, TokenSigner(TEST_SIGNING_KEY, purpose='checkin-code'), 'XH-CY-CY1')}").get_data(as_text=True)
    form = dict(re.findall(r'name="(csrf_token|pass|activity)" value="([^"]*)"', html))
    statuses = [phone.post("/c/checkin", data=form | {"phone": f"1370000000{i}"}).status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_corrupt_config_missing_signing_key_and_init_over_existing_data(tmp_path):
    assert run(tmp_path, "init").returncode == 0
    assert run(tmp_path, "demo").returncode == 0
    config = tmp_path / "kiosk.toml"
    saved = config.read_text(encoding="utf-8")
    config.write_text(saved + "BROKEN = \n", encoding="utf-8")
    broken = run(tmp_path, "serve")
    assert broken.returncode == 2 and "kiosk.toml is not valid TOML" in broken.stderr and "Traceback" not in broken.stderr
    config.write_text("\n".join(line for line in saved.splitlines() if not line.startswith("SIGNING_KEY")) + "\n", encoding="utf-8")
    refused = run(tmp_path, "serve")
    assert refused.returncode == 2 and "SIGNING_KEY" in refused.stderr
    # The file is lost: init must not mint a new signing key over members and activities.
    config.unlink()
    again = run(tmp_path, "init")
    assert again.returncode == 2 and "--force" in again.stderr and not config.exists()
    forced = run(tmp_path, "init", "--force")
    assert forced.returncode == 0 and "SIGNING_KEY" in config.read_text(encoding="utf-8")


def test_healthz_is_degraded_without_a_signing_key(tmp_path, instance_path):
    app = make_app(instance_path, SIGNING_KEY="")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["status"] == "degraded" and "SIGNING_KEY" in response.json["configuration"]
