"""Idle reset, USB scanner capture and the phone keypad, as a visitor meets them.

Timers run on Playwright's fake clock (page.clock): the idle timer's 60 s and 20 s pass in
no time. Scanner tests use real key timing, since timing is what they are about."""

import random
import re
import time
from urllib.parse import parse_qs

from playwright.sync_api import expect

from kiosk.members.services import card_token, register_member
from kiosk.signing import TokenSigner
from tests.helpers import TEST_SIGNING_KEY

MARKET = "西红集市之“茶香品红韵”"  # the demo's activity that is open all day


def tap_digits(page, digits: str) -> None:
    for digit in digits:
        page.locator(f".key[data-key='{digit}']").tap()


def open_keypad(page, base_url: str) -> None:
    """The kiosk's phone keypad lives on an activity's check-in screen."""
    page.goto(base_url + "/checkin")
    page.get_by_role("link", name=re.compile(MARKET)).tap()
    expect(page.locator("h1")).to_have_text(MARKET)


def test_idle_timer_asks_then_returns_to_attract_and_forgets_the_visitor(page, base_url, artifacts):
    page.clock.install()
    open_keypad(page, base_url)
    page.get_by_role("button", name="English").tap()
    expect(page.get_by_role("button", name="Check in")).to_be_visible()
    tap_digits(page, "1381")
    display = page.locator("[data-keypad-display]")
    expect(display).to_have_text("138 1")
    dialog = page.locator("#idle-dialog")
    page.clock.run_for(59_000)
    expect(dialog).to_be_hidden()
    page.clock.run_for(1_500)  # IDLE_SECONDS = 60
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Still there?")
    expect(dialog.locator("[data-idle-countdown]")).to_have_text("20")
    page.screenshot(path=str(artifacts / "idle-dialog.png"))
    page.clock.run_for(20_000)  # IDLE_GRACE_SECONDS = 20
    page.wait_for_url(base_url + "/attract")
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


def test_keep_using_keeps_what_the_visitor_typed(page, base_url):
    page.clock.install()
    open_keypad(page, base_url)
    screen = page.url
    tap_digits(page, "139")
    page.clock.run_for(61_000)
    expect(page.locator("#idle-dialog")).to_be_visible()
    page.get_by_role("button", name="继续使用").tap()
    expect(page.locator("#idle-dialog")).to_be_hidden()
    page.clock.run_for(30_000)  # the grace countdown stopped: still here
    assert page.url == screen
    expect(page.locator("[data-keypad-display]")).to_have_text("139")


def test_a_tap_anywhere_while_asked_counts_as_still_here(page, base_url):
    """Elderly visitors tap anywhere, not on the button. Fails with the old idle.js, which
    ignored every touch while the dialog was open."""
    page.clock.install()
    open_keypad(page, base_url)
    screen = page.url
    tap_digits(page, "1390")
    page.clock.run_for(61_000)
    expect(page.locator("#idle-dialog")).to_be_visible()
    page.touchscreen.tap(40, 1000)  # on the dimmed backdrop, far from the dialog
    expect(page.locator("#idle-dialog")).to_be_hidden()
    page.clock.run_for(25_000)
    assert page.url == screen
    expect(page.locator("[data-keypad-display]")).to_have_text("139 0")


def test_keypad_shows_the_digits_while_typing_and_the_result_masked(page, base_url):
    open_keypad(page, base_url)
    tap_digits(page, "138123456789")  # one digit too many: ignored
    expect(page.locator("[data-keypad-display]")).to_have_text("138 1234 5678")
    page.locator("[data-key-back]").tap()
    expect(page.locator("[data-keypad-display]")).to_have_text("138 1234 567")
    tap_digits(page, "8")
    page.get_by_role("button", name="签到").tap()
    expect(page.locator(".checkin-success")).to_contain_text("138****5678")
    assert "13812345678" not in page.content()


def test_keypad_reports_a_short_number_and_keeps_the_digits(page, base_url):
    open_keypad(page, base_url)
    tap_digits(page, "1381234567")
    page.get_by_role("button", name="签到").tap()
    expect(page.locator(".message-error")).to_have_text("手机号是 11 位数字，您输入了 10 位。")
    # The ten digits are still there: the visitor adds the missing one and checks in.
    expect(page.locator("[data-keypad-display]")).to_have_text("138 1234 567")
    tap_digits(page, "8")
    page.get_by_role("button", name="签到").tap()
    expect(page.locator(".checkin-success")).to_contain_text("138****5678")


def scans_sent(page) -> list[str]:
    sent: list[str] = []
    page.on("request", lambda r: sent.append(parse_qs(r.post_data or "").get("code", [""])[0]) if r.url.endswith("/scan") else None)
    return sent


def settle(page) -> None:
    """A fetch of our own, awaited: any /scan request sent before it has been seen by then."""
    with page.expect_request(lambda r: r.url.endswith("/favicon.svg?settle")):
        page.evaluate("fetch('/static/favicon.svg?settle').then(r => r.status)")


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
    sent = scans_sent(page)
    page.keyboard.type("ABCDEF", delay=150)
    page.keyboard.press("Enter")
    settle(page)
    assert sent == []
    expect(page.locator("#scan-result")).to_be_empty()


def scanner_types(page, code: str, intervals: list[float]) -> None:
    """Type code and Enter the way a USB scanner does: each key is sent after its interval (ms)
    and carries the time the scanner produced it (CDP's event timestamp), as the OS would
    stamp a real key, so a busy test machine cannot blur the timing the page sees."""
    cdp = page.context.new_cdp_session(page)
    at = time.time()
    for char, interval in zip([*code, "Enter"], intervals, strict=True):
        time.sleep(interval / 1000)
        at += interval / 1000
        key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"} if char == "Enter" else {"key": char, "text": char}
        cdp.send("Input.dispatchKeyEvent", {"type": "keyDown", "timestamp": at, **key})
        cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "timestamp": at, "key": key["key"]})
    cdp.detach()


def test_scans_arrive_whole_at_any_scanner_speed_with_a_hiccup_right_after_load(page, serve):
    """Keys 2–60 ms apart with jitter, one 80–150 ms hiccup inside each code, typed as soon as
    the page's DOM is there: all eight codes reach the server whole. The old scanner.js (one
    fixed 80 ms gap, timed when handled) split them at the hiccup."""
    cards = []

    def seed(session):
        member = register_member(
            session, name="张建华", phone="13812345678", community="翠苑一区", age_band="70-79", consent=True, consent_version="t", actor=None
        )
        cards.append(card_token(member, TokenSigner(TEST_SIGNING_KEY, purpose="member-card"), "XH-CY-CY1"))

    base_url = serve(setup=seed, demo=False)
    card = cards[0]
    rng = random.Random(10)
    sent = scans_sent(page)
    for attempt, fast in enumerate([2, 5, 10, 20, 30, 45, 60, 60]):
        page.goto(base_url + "/", wait_until="domcontentloaded")
        intervals = [min(max(rng.gauss(fast, fast / 4), 1), fast * 1.25) for _ in range(len(card) + 1)]
        intervals[0] = 0
        intervals[rng.randrange(3, len(card) - 3)] = rng.uniform(80, 150)
        scanner_types(page, card, intervals)
        settle(page)
        assert sent == [card] * (attempt + 1), (attempt, fast, sent)
        page.wait_for_url(base_url + "/points")
        expect(page.locator(".points-summary")).to_contain_text("张*华")


def test_a_person_typing_with_one_quick_pair_is_not_a_scan(page, base_url):
    page.goto(base_url + "/")
    sent = scans_sent(page)
    scanner_types(page, "ABCDEFGH", [0, 150, 40, 160, 140, 170, 150, 130, 40])
    settle(page)
    assert sent == []


def test_typing_into_a_text_field_is_left_alone_and_a_paste_is_a_scan(page, base_url):
    page.goto(base_url + "/")
    sent = scans_sent(page)
    page.evaluate("""() => { const i = document.createElement('input'); i.id = 'probe'; i.setAttribute('aria-label', 'probe');
                      document.querySelector('main').prepend(i); }""")
    page.locator("#probe").focus()
    page.keyboard.type("ABCDEFGH", delay=5)
    page.keyboard.press("Enter")
    settle(page)
    assert sent == [] and page.locator("#probe").input_value() == "ABCDEFGH"
    page.locator("h1").click()
    page.evaluate("""() => { const data = new DataTransfer(); data.setData('text', 'PASTED-CODE-1');
                      document.body.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true})); }""")
    expect(page.locator("#scan-result .message-error")).to_contain_text("无法识别此码")
    assert sent == ["PASTED-CODE-1"]
