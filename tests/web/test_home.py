import re

from tests.helpers import csrf_token, post

CJK = re.compile(r"[\u3400-\u9fff]")


def test_home_is_chinese_first_with_tiles_clock_and_notices(client, session):
    from kiosk.demo import load_demo

    load_demo(session)
    session.commit()
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="zh-CN"' in html
    for text in ("活动签到", "服务预约", "阅览室", "我的积分", "翠苑街道翠苑一区党群服务中心", "《公司运营与风险防范》公益讲座"):
        assert text in html
    assert "data-clock" in html
    assert "HX-Request" in response.headers["Vary"]


def test_tile_navigation_through_htmx_gets_only_the_main_content(client):
    full = client.get("/points")
    fragment = client.get("/points", headers={"HX-Request": "true", "HX-Target": "main"})
    assert "<html" in full.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and "<title>我的积分" in body and "返回首页" in body
    assert "HX-Request" in fragment.headers["Vary"]


def test_every_home_tile_leads_to_a_landed_feature(client):
    """Booking and the reading hall have landed: no tile says 即将开放, and each opens its page."""
    html = client.get("/").get_data(as_text=True)
    assert "即将开放" not in html
    for path, title in (("/booking", "服务预约"), ("/catalogue", "阅览室")):
        page = client.get(path)
        assert page.status_code == 200 and title in page.get_data(as_text=True)


def test_english_is_the_second_locale_and_has_no_chinese_ui_text(client):
    response = post(client, "/lang", {"lang": "en"})
    assert response.status_code == 303
    for path in ("/", "/points", "/attract", "/checkin", "/no-such-page"):
        html = client.get(path).get_data(as_text=True)
        assert '<html lang="en"' in html
        # Every UI string comes from the catalogue: what is left in Chinese is data.
        leftover = html.replace("<wbr>", "").replace("翠苑街道翠苑一区党群服务中心", "").replace(">中文<", "><")
        assert not CJK.search(leftover), CJK.findall(leftover)[:20]
    assert "My points" in client.get("/").get_data(as_text=True)
    post(client, "/lang", {"lang": "zh"})
    assert "我的积分" in client.get("/").get_data(as_text=True)


def test_unknown_language_is_refused(client):
    response = post(client, "/lang", {"lang": "fr"})
    assert response.status_code == 400
    assert "请求有误" in response.get_data(as_text=True)


def test_elder_mode_toggles_and_defaults_from_config(client, app):
    assert 'class="elder"' not in client.get("/").get_data(as_text=True)
    post(client, "/elder")
    assert '<html lang="zh-CN" class="elder">' in client.get("/").get_data(as_text=True)
    post(client, "/elder")
    assert 'class="elder"' not in client.get("/").get_data(as_text=True)
    app.config["ELDER_MODE_DEFAULT"] = True
    fresh = app.test_client()
    assert 'class="elder"' in fresh.get("/").get_data(as_text=True)
    post(fresh, "/elder")  # a visitor can still turn it off
    assert 'class="elder"' not in fresh.get("/").get_data(as_text=True)


def test_language_switch_returns_to_the_page_it_came_from_but_never_off_site(client):
    token = csrf_token(client)
    back = client.post("/lang", data={"lang": "en"}, headers={"X-CSRFToken": token, "Referer": "http://localhost/points"})
    assert back.headers["Location"] == "/points"
    away = client.post("/lang", data={"lang": "en"}, headers={"X-CSRFToken": token, "Referer": "http://evil.example/x"})
    assert away.headers["Location"] == "/"


def test_ending_a_visit_clears_the_server_side_session(client, open_activity):
    post(client, "/lang", {"lang": "en"})
    post(client, "/elder")
    client.get(f"/checkin/{open_activity.id}")  # the activity on screen is part of the visit
    with client.session_transaction() as s:
        assert s["lang"] == "en" and s["elder"] is True and s["checkin_activity"] == open_activity.id
    assert post(client, "/session/end", token_from="/points").status_code == 204
    with client.session_transaction() as s:
        assert "lang" not in s and "elder" not in s and "checkin_activity" not in s
    assert '<html lang="zh-CN">' in client.get("/points").get_data(as_text=True)


def test_my_points_without_a_card_shows_nothing_personal_and_points_to_the_desk(client):
    html = client.get("/points").get_data(as_text=True)
    assert "请扫描会员卡" in html and "服务台" in html
    assert "data-balance" not in html
    # The keypad here takes only the card number printed under the card's QR (issue 10), never a
    # mobile number: a phone number typed here could be anyone's.
    assert 'name="phone"' not in html and 'name="card_number"' in html and 'data-keypad-groups="6,4"' in html
    refused = post(client, "/points/card", {"card_number": "13900000001"}, htmx=True, token_from="/points")
    assert refused.status_code == 422 and "data-balance" not in refused.get_data(as_text=True)


def test_attract_screen_has_no_idle_timer(client):
    html = client.get("/attract").get_data(as_text=True)
    assert 'data-idle-seconds="0"' in html and "轻触屏幕开始使用" in html
    assert 'data-idle-seconds="60"' in client.get("/").get_data(as_text=True)


def test_security_headers(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_no_page_loads_anything_from_another_host(client):
    for path in ("/", "/points", "/attract", "/staff/login"):
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r'(src|href)="(https?:)?//', html), path


def test_the_kept_home_page_is_the_page_a_fresh_render_gives(client, session, app):
    """Home is rendered once per language, elder mode, layout, minute and notices and kept
    (kiosk.home.views.home_page); a tap fills in its session's CSRF token. What it serves must
    be what rendering afresh gives, with its own token in every form, and a new notice, the
    other language or elder mode must show at once."""
    from datetime import timedelta

    from flask_wtf.csrf import generate_csrf

    from kiosk.db import utcnow, write_transaction
    from kiosk.extensions import db
    from kiosk.home import views
    from kiosk.home.services import current_notices, upsert_notice
    from kiosk.web import render

    client.get("/")
    kept = client.get("/").get_data(as_text=True)
    assert views.CSRF_SLOT not in kept
    token = re.search(r'name="csrf-token" content="([^"]+)"', kept).group(1)
    assert kept.count(token) == 3  # the meta tag and the top bar's two forms
    cookies = "; ".join(f"{name}={client.get_cookie(name).value}" for name in ("session", "kiosk_device"))
    with app.test_request_context("/", headers={"Cookie": cookies}):
        app.preprocess_request()
        page = render("home/page.html", tiles_html=views.tiles_html(), notices=current_notices(db.session)).get_data(as_text=True)
        page = page.replace(generate_csrf(), token)
    clock = re.compile(r"data-clock>[^<]*<")  # the minute may have turned in between
    assert clock.sub("", kept) == clock.sub("", page)

    with write_transaction(session):
        upsert_notice(session, key="new", source="centre", title="新到的通知：周六义诊", body="", published_at=utcnow() - timedelta(minutes=1))
    assert "新到的通知：周六义诊" in client.get("/").get_data(as_text=True)
    post(client, "/lang", {"lang": "en"}, token_from="/")
    assert '<html lang="en"' in client.get("/").get_data(as_text=True)
    post(client, "/elder", {}, token_from="/")
    assert 'class="elder"' in client.get("/").get_data(as_text=True)
    htmx = client.get("/", headers={"HX-Request": "true", "HX-Target": "main"}).get_data(as_text=True)
    assert "<html" not in htmx and "<title>" in htmx
