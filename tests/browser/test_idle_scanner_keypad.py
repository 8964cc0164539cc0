"""Idle reset, USB scanner capture and the phone keypad, as a visitor meets them."""

import re

from playwright.sync_api import expect

MARKET = "西红集市之“茶香品红韵”"  # the demo's activity that is open all day


def tap_digits(page, digits: str) -> None:
    for digit in digits:
        page.locator(f".key[data-key='{digit}']").tap()


def open_keypad(page, base_url: str) -> None:
    """The kiosk's phone keypad lives on an activity's check-in screen."""
    page.goto(base_url + "/checkin")
    page.get_by_role("link", name=re.compile(MARKET)).tap()
    expect(page.locator("h1")).to_have_text(MARKET)


def test_idle_timer_asks_then_returns_to_attract_and_forgets_the_visitor(page, serve, artifacts):
    base_url = serve(IDLE_SECONDS=2, IDLE_GRACE_SECONDS=3)
    open_keypad(page, base_url)
    page.get_by_role("button", name="English").tap()
    expect(page.get_by_role("button", name="Check in")).to_be_visible()
    tap_digits(page, "1381")
    display = page.locator("[data-keypad-display]")
    expect(display).to_have_text("138*")
    dialog = page.locator("#idle-dialog")
    expect(dialog).to_be_visible(timeout=5000)
    expect(dialog).to_contain_text("Still there?")
    page.screenshot(path=str(artifacts / "idle-dialog.png"))
    page.wait_for_url(base_url + "/attract", timeout=8000)
    expect(page.locator(".attract-call")).to_have_text("轻触屏幕开始使用")  # language choice forgotten
    # Nothing of the visit is left in web storage; htmx keeps only the path of the new page.
    storage = page.evaluate("[Object.assign({}, sessionStorage), Object.assign({}, localStorage)]")
    assert storage == [{"htmx-current-path-for-history": "/attract"}, {}] or storage == [{}, {}]
    page.locator(".attract-screen").tap()
    expect(page.locator("h1")).to_have_text("欢迎")
    page.get_by_role("link", name=re.compile("活动签到")).tap()
    page.get_by_role("link", name=re.compile(MARKET)).tap()
    expect(page.locator("[data-keypad-display]")).to_have_text("请输入手机号")
    assert page.locator("[data-keypad-value]").input_value() == ""


def test_keep_using_keeps_what_the_visitor_typed(page, serve):
    base_url = serve(IDLE_SECONDS=2, IDLE_GRACE_SECONDS=20)
    open_keypad(page, base_url)
    screen = page.url
    tap_digits(page, "139")
    expect(page.locator("#idle-dialog")).to_be_visible(timeout=5000)
    page.get_by_role("button", name="继续使用").tap()
    expect(page.locator("#idle-dialog")).to_be_hidden()
    assert page.url == screen
    expect(page.locator("[data-keypad-display]")).to_have_text("139")


def test_keypad_shows_the_number_masked_and_the_server_confirms_it_masked(page, base_url):
    open_keypad(page, base_url)
    tap_digits(page, "138123456789")  # one digit too many: ignored
    expect(page.locator("[data-keypad-display]")).to_have_text("138****5678")
    page.locator("[data-key-back]").tap()
    expect(page.locator("[data-keypad-display]")).to_have_text("138****567")
    tap_digits(page, "8")
    page.get_by_role("button", name="签到").tap()
    expect(page.locator(".checkin-success")).to_contain_text("138****5678")
    assert "13812345678" not in page.content()


def test_keypad_reports_a_short_number_in_chinese(page, base_url):
    open_keypad(page, base_url)
    tap_digits(page, "13812")
    page.get_by_role("button", name="签到").tap()
    expect(page.locator(".message-error")).to_have_text("手机号是 11 位数字，您输入了 5 位。")


def test_a_scanner_anywhere_on_the_page_reaches_the_server(page, base_url):
    page.goto(base_url + "/")
    # A USB scanner types fast and ends with Enter.
    page.keyboard.type("XYZ-NOT-A-KIOSK-CODE", delay=5)
    page.keyboard.press("Enter")
    expect(page.locator("#scan-result .message-error")).to_contain_text("无法识别此码")
    page.get_by_role("button", name="知道了").tap()
    expect(page.locator("#scan-result .message-error")).to_have_count(0)
    page.keyboard.type("Q" * 200, delay=1)
    page.keyboard.press("Enter")
    expect(page.locator("#scan-result .message-error")).to_contain_text("此码过长")


def test_slow_typing_is_not_taken_for_a_scan(page, base_url):
    page.goto(base_url + "/")
    page.keyboard.type("ABCDEF", delay=150)
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    expect(page.locator("#scan-result")).to_be_empty()
