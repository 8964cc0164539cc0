"""The booking screens issue 10's guard (test_visitor_screens.py) does not visit: the keypad's
refusal, the waiting list's keypad, the list joined by number and by member card (a toast),
and the look-up's ticket-number keys; at every kiosk size, normal and elder mode, in Chinese and English
(tests/browser/layout_checks.py).

A refusal or the waiting list's answer must be on screen after 预约 / 排队候补 (at 1280×800 in
elder mode they rendered below the fold: the visitor tapped and saw nothing change); once on
the waiting list the number typed is no longer shown in full and the visit ends by itself (the
finished-task rule); 删除 and 下一步 on the look-up keys must not be squeezed into vertical text.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from kiosk.booking import services
from kiosk.members.services import card_token, register_member
from kiosk.signing import TokenSigner
from tests.browser.layout_checks import layout_problems
from tests.helpers import TEST_SIGNING_KEY

ZONE = ZoneInfo("Asia/Shanghai")
SIZES = {"portrait": (1080, 1920), "landscape": (1920, 1080), "small": (1280, 800)}
# Words never split across two lines on these screens (session 9's review: 缝补预 / 约, 输入手 / 机号).
WORDS = ("预约", "手机号", "候补", "理发", "服务台", "二维码")


CARDS: dict[str, str] = {}


def seed(session):
    member = register_member(session, name="王秀英", phone="13900000002", community="", age_band="60-69", consent=True, consent_version="t", actor=None)
    session.flush()
    CARDS["member"] = card_token(member, TokenSigner(TEST_SIGNING_KEY, purpose="member-card"), "XH-CY-CY1")
    service = services.save_service(session, None, name="理发", prefix="A", category="haircut", place="嘉荷社区 一楼", actor=None)
    for weekday in range(7):
        services.save_template(session, service, weekday=weekday, starts="09:00", ends="11:30", slot_minutes=20, capacity=1, actor=None)


def _slot(hour: int, minute: int = 0) -> str:
    return (datetime.now(ZONE).date() + timedelta(days=1)).strftime("%Y%m%d") + f"{hour:02d}{minute:02d}"


def _type(page, digits: str) -> None:
    for digit in digits:
        page.locator(f'.keypad .key[data-key="{digit}"]').click()


def _check(page, artifacts, name: str, primary: list[str], elder: bool, problems: dict, *, overlay: tuple[str, ...] = ()) -> None:
    page.screenshot(path=str(artifacts / f"booking-{name}.png"))
    found = layout_problems(page, primary, elder=elder, words=WORDS)
    if overlay:  # a toast floats over the page by design: its text overlapping the page's is no fault
        found = [p for p in found if not (p.startswith("text overlaps") and any(f"«{text}" in p for text in overlay))]
    if found:
        problems[name] = found


@pytest.mark.parametrize("english", [False, True], ids=["zh", "en"])
@pytest.mark.parametrize("elder", [False, True], ids=["normal", "elder"])
@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_the_keypads_answers_and_the_look_up_keys_hold_at_every_size(serve, page, artifacts, size, elder, english):
    base_url = serve(setup=seed, demo=False)
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    page.goto(base_url + "/")
    if elder:
        page.get_by_role("button", name="长辈模式").click()
    if english:
        page.get_by_role("button", name="English").click()
    tag = f"{size}-{'elder' if elder else 'normal'}-{'en' if english else 'zh'}"
    problems: dict[str, list[str]] = {}
    page.goto(base_url + "/booking")
    tile = page.locator(".service-tile").first.get_attribute("href")

    # Tomorrow's 9:00 is full (one place): this number's ticket A001.
    page.goto(base_url + f"{tile}/slot/{_slot(9)}")
    _type(page, "13800000001")
    page.locator(".keypad-submit").click()
    expect(page.locator("[data-ticket]")).to_have_text("理发 A001")

    # A refusal: the number already holds 9:00, so 9:20 is refused (one per person).
    page.goto(base_url + f"{tile}/slot/{_slot(9, 20)}")
    _type(page, "13800000001")
    page.locator(".keypad-submit").click()
    refusal = page.locator("#booking-result [data-error-code]")
    expect(refusal).to_be_visible()
    _check(page, artifacts, f"refusal-{tag}", ["#booking-result [data-error-code]"], elder, problems)

    # A full slot: the refusal offers other times and the waiting list, both in view (the list's
    # button came after three other times, below the fold at 1280×800 elder).
    page.goto(base_url + f"{tile}/slot/{_slot(9)}")
    _type(page, "13800000003")
    page.locator(".keypad-submit").click()
    expect(page.locator('#booking-result [data-error-code="slot_full"]')).to_be_visible()
    _check(page, artifacts, f"full-{tag}", ["#booking-result [data-error-code] .lead", "#booking-result [data-waitlist-offer]"], elder, problems)

    # The waiting list of the full 9:00, by number.
    page.goto(base_url + f"{tile}/slot/{_slot(9)}?waitlist=1")
    _check(page, artifacts, f"waitlist-keypad-{tag}", [".keypad-submit"], elder, problems)
    _type(page, "13800000002")
    page.locator(".keypad-submit").click()
    expect(page.locator("[data-waitlist-position]")).to_be_visible()
    _check(page, artifacts, f"waitlisted-{tag}", ["[data-waitlist-position]", "[data-finish]"], elder, problems)
    if "138 0000 0002" in page.locator("#main").inner_text():
        problems.setdefault(f"waitlisted-{tag}", []).append("the number typed is still shown in full")

    # A member card on the waiting list's screen joins the list: a finished task as by number,
    # the result page with its countdown (a toast left the keypad screen, and the visit, open).
    page.goto(base_url + f"{tile}/slot/{_slot(9)}?waitlist=1")
    page.keyboard.type(CARDS["member"], delay=3)
    page.keyboard.press("Enter")
    page.wait_for_url(base_url + "/booking/waitlisted")
    expect(page.locator("[data-waitlist-position]")).to_be_visible()
    _check(
        page,
        artifacts,
        f"waitlist-card-{tag}",
        ["[data-waitlist-position]", "[data-finish]"],
        elder,
        problems,
        overlay=("您是第", "You are number", "知道了", "OK"),
    )

    # The look-up's ticket-number keys.
    page.goto(base_url + "/booking/lookup?letter=A&digits=1")
    _check(page, artifacts, f"lookup-digits-{tag}", ["[data-ticket-entry]"], elder, problems)
    # Its digits sit as on the phone keypad (4 under 1, 7 under 4), in landscape too (1 2 3 4 / 5 6 7 8).
    left = [page.locator(".ticket-keys .key", has_text=key).first.bounding_box()["x"] for key in "147"]
    if max(left) - min(left) > 2:
        problems.setdefault(f"lookup-digits-{tag}", []).append(f"1, 4 and 7 not in one column: {left}")
    # The number step's refusal beside the keypad: above it, 查找预约 fell below the fold (elder).
    page.goto(base_url + "/booking/lookup?letter=A&digits=1&next=1")
    _type(page, "13800000009")
    page.locator(".keypad-submit").click()
    expect(page.locator("#lookup-result [data-error-code]")).to_be_visible()
    _check(page, artifacts, f"lookup-refused-{tag}", ["#lookup-result [data-error-code]", ".keypad-submit"], elder, problems)
    assert problems == {}, problems

    # The waiting list joined is a finished task: 完成 ends the visit (back at the home screen).
    page.goto(base_url + f"{tile}/slot/{_slot(9)}?waitlist=1")
    _type(page, "13800000005")
    page.locator(".keypad-submit").click()
    page.locator("[data-finish]").click()
    page.wait_for_url(base_url + "/")
