"""Bad input gets a clear Chinese message and a 4xx, never a 500 or a stack trace."""

import pytest
from flask import Blueprint

from tests.helpers import post


def assert_clear_refusal(response, status, text):
    body = response.get_data(as_text=True)
    assert response.status_code == status, body[:300]
    assert text in body
    assert "Traceback" not in body


def test_unknown_scanned_code(client):
    response = post(client, "/scan", {"code": "HELLO-NOT-OURS"}, htmx=True)
    assert_clear_refusal(response, 422, "无法识别此码")
    assert 'data-error-code="scan_unknown"' in response.get_data(as_text=True)


def test_two_hundred_character_scan(client):
    response = post(client, "/scan", {"code": "A" * 200}, htmx=True)
    assert_clear_refusal(response, 422, "此码过长")


@pytest.mark.parametrize("data", [{}, {"code": ""}, {"code": "   "}])
def test_empty_scan(client, data):
    assert_clear_refusal(post(client, "/scan", data, htmx=True), 422, "没有扫到内容")


def test_scan_without_htmx_is_still_a_clear_page(client):
    assert_clear_refusal(post(client, "/scan", {"code": "???"}), 422, "无法识别此码")


@pytest.mark.parametrize(
    "phone, text",
    [
        ("13812abcdef", "手机号只能包含数字"),
        ("1381234", "您输入了 7 位"),
        ("12812345678", "这不是有效的手机号"),
        ("", "请输入手机号"),
        ("1" * 500, "手机号是 11 位数字"),
    ],
)
def test_phone_keypad_endpoint_refuses_bad_numbers(client, session, open_activity, phone, text):
    from sqlalchemy import func, select

    from kiosk.checkin.models import CheckIn

    path = f"/checkin/{open_activity.id}"
    response = post(client, f"{path}/phone", {"phone": phone}, htmx=True, token_from=path)
    assert_clear_refusal(response, 422, text)
    assert "data-keypad" in response.get_data(as_text=True)  # the keypad comes back to correct it
    assert session.scalar(select(func.count()).select_from(CheckIn)) == 0


def test_good_phone_is_confirmed_masked_only(client, open_activity):
    path = f"/checkin/{open_activity.id}"
    response = post(client, f"{path}/phone", {"phone": "13812345678"}, htmx=True, token_from=path)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "138****5678" in body and "13812345678" not in body
    with client.session_transaction() as s:
        assert "13812345678" not in str(dict(s))  # the cookie never carries a whole number


def test_post_without_csrf_token_is_refused(client, open_activity):
    response = client.post(f"/checkin/{open_activity.id}/phone", data={"phone": "13812345678"})
    assert_clear_refusal(response, 400, "页面已过期")


def test_not_found_is_a_touch_friendly_chinese_page(client):
    response = client.get("/no/such/page")
    assert_clear_refusal(response, 404, "页面不存在")
    assert "返回首页" in response.get_data(as_text=True)


def test_wrong_method(client):
    assert_clear_refusal(client.get("/scan"), 405, "无权访问")


def test_an_unexpected_error_is_a_chinese_500_page_without_a_stack_trace(instance_path):
    from tests.helpers import make_app

    app = make_app(instance_path)
    boom = Blueprint("boom", __name__)

    @boom.get("/boom")
    def _boom():
        raise RuntimeError("secret internals 13812345678")

    app.register_blueprint(boom)
    response = app.test_client().get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "抱歉，终端遇到问题" in body and "返回首页" in body
    assert "secret internals" not in body and "RuntimeError" not in body


def test_htmx_errors_are_fragments(client):
    response = client.get("/nope", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 404 and "<html" not in body and "页面不存在" in body
