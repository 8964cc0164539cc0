"""The acceptance flow: staff shows a rotating QR, a phone reads it off the screen, checks in,
and the staff screen's live count goes up by one."""

import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from kiosk.members.services import register_member
from kiosk.staff.services import create_staff_user
from tests.browser.checks import assert_accessible, assert_touch_targets, staff_login
from tests.helpers import open_activity_now

PHONE_VIEWPORT = {"width": 390, "height": 844}


def seed(session):
    create_staff_user(session, "li.staff", "correct-horse-1", "staff", display_name="李老师")
    register_member(session, name="张建华", phone="13812345678", community="翠苑一区", age_band="70-79", consent=True, consent_version="t", actor=None)


def test_rotating_qr_read_by_a_phone_checks_in_and_the_live_count_rises(browser, serve, page, artifacts):
    base_url = serve(setup=seed, demo=False)
    staff = browser.new_context(viewport={"width": 1280, "height": 1000})
    desk = staff.new_page()
    desk.clock.install()  # the live count's poll runs when the test says (no real waiting)
    staff_login(desk, base_url, "li.staff", "correct-horse-1")

    start = datetime.now(ZoneInfo("Asia/Shanghai")).replace(second=0, microsecond=0) - timedelta(minutes=5)
    desk.goto(base_url + "/staff/activities/new")
    desk.get_by_label("名称").fill("《公司运营与风险防范》公益讲座")
    desk.get_by_label("类别").select_option("lecture")
    desk.get_by_label("地点").fill("黄龙商圈党群服务中心")
    desk.get_by_label("开始时间").fill(start.strftime("%Y-%m-%dT%H:%M"))
    desk.get_by_label("结束时间").fill((start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    desk.get_by_label("参加可得积分").fill("10")
    desk.get_by_role("button", name="保存").click()
    expect(desk.locator(".flashes")).to_contain_text("活动已保存")

    desk.get_by_role("link", name="显示动态签到码").click()
    count = desk.locator("[data-live-count]")
    expect(count).to_have_text("0")
    desk.screenshot(path=str(artifacts / "rotating-qr.png"))
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(desk.screenshot())))
    assert len(decoded) == 1
    url = decoded[0].text
    assert url.startswith(base_url + "/c/C1.XH-CY-CY1.") and re.search(r"\.R\d+\.", url)

    phone_context = browser.new_context(viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True, locale="zh-CN")
    phone = phone_context.new_page()
    phone.goto(url)
    expect(phone.locator("h1")).to_have_text("《公司运营与风险防范》公益讲座")
    assert_accessible(phone)
    phone.get_by_label("您的手机号").fill("13812345678")
    phone.get_by_role("button", name="签到").tap()
    expect(phone.locator(".checkin-success")).to_contain_text("签到成功：张*华，《公司运营与风险防范》公益讲座。积分 +10")
    phone.screenshot(path=str(artifacts / "phone-checked-in.png"))
    assert "13812345678" not in phone.content()

    # The installed clock still flows in real time: on a loaded machine the 3 s poll may have
    # run while the phone checked in, so the count is not asserted to be still 0 here.
    desk.clock.run_for(3_000)  # the staff screen polls every 3 s
    expect(count).to_have_text("1")
    phone_context.close()
    staff.close()


def test_kiosk_checkin_screen_by_keypad(page, serve):
    def seed_activity(session):
        open_activity_now(
            session, title="四点半课堂", category="after_school", place="一楼教室", points="3", policy="daily", capacity="30", minutes_ago=10, hours=1
        )

    base_url = serve(setup=seed_activity, demo=False)
    # Playwright's fake clock: the count's 3 s poll and the 15 s countdown run only when told.
    page.clock.install()
    page.goto(base_url + "/")
    page.get_by_role("link", name=re.compile("活动签到")).tap()
    page.get_by_role("link", name=re.compile("四点半课堂")).tap()
    expect(page.locator("h1")).to_have_text("四点半课堂")
    assert assert_touch_targets(page) > 10
    assert_accessible(page)
    live = page.locator("[aria-live=polite]:has([data-live-count])")
    live.evaluate("el => { window.__liveRegion = el; }")
    for digit in "13900001111":
        page.locator(f".key[data-key='{digit}']").tap()
    expect(page.locator("[data-keypad-display]")).to_have_text("139 0000 1111")  # visible while typing
    page.get_by_role("button", name="签到").tap()
    expect(page.locator(".checkin-success")).to_contain_text("签到成功：139****1111，四点半课堂。")
    # The answer itself raised the count (no poll ran: the clock stood still), inside the same
    # aria-live element, so a screen reader announces it.
    expect(page.locator("[data-live-count]")).to_have_text("1")
    assert live.evaluate("el => el === window.__liveRegion") is True
    # A finished check-in ends the visit after a visible countdown: the next person starts at home.
    expect(page.locator("[data-finish-countdown]")).to_have_text("15")
    page.clock.run_for(5_000)
    expect(page.locator("[data-finish-countdown]")).to_have_text("10")
    page.clock.run_for(10_000)
    page.wait_for_url(base_url + "/")
    expect(page.locator("h1")).to_have_text("欢迎")
