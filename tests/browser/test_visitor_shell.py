"""The touchscreen shell in a real Chromium."""

import re

from playwright.sync_api import expect

from tests.browser.checks import assert_accessible, assert_touch_targets
from tests.browser.conftest import enrol

VISITOR_PAGES = ["/", "/points", "/checkin", "/booking", "/catalogue", "/attract", "/no-such-page"]


def visitor_screens(page, base_url):
    """Every visitor page above, then the check-in screen of the demo's all-day activity."""
    for path in VISITOR_PAGES:
        page.goto(base_url + path)
        yield path
    page.goto(base_url + "/checkin")
    page.get_by_role("link", name=re.compile("西红集市")).tap()
    expect(page.locator("[data-keypad]")).to_be_visible()
    yield "check-in screen"


def test_home_renders_chinese_and_a_screenshot_is_kept(page, base_url, artifacts):
    page.goto(base_url + "/")
    expect(page.locator("h1")).to_have_text("欢迎")
    expect(page.locator(".tile-title")).to_have_text(["活动签到", "服务预约", "阅览室", "我的积分"])
    expect(page.locator(".notice").first).to_contain_text("《公司运营与风险防范》公益讲座")
    # The CJK font is installed: a Chinese glyph is as wide as its font size (boxes would not be).
    width = page.evaluate("""() => {
        const s = document.createElement('span'); s.textContent = '活动签到'; s.style.fontSize = '40px';
        document.body.appendChild(s); const w = s.getBoundingClientRect().width; s.remove(); return w; }""")
    assert 150 <= width <= 170
    page.screenshot(path=str(artifacts / "home.png"))
    assert (artifacts / "home.png").stat().st_size > 20_000


def test_clock_shows_the_centres_time_even_when_the_pc_is_on_utc(browser, base_url):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    context = browser.new_context(timezone_id="UTC", locale="zh-CN")
    enrol(context)
    page = context.new_page()
    page.goto(base_url + "/attract")
    page.wait_for_timeout(1200)  # let the clock tick at least once
    shown = page.locator("[data-clock]").inner_text()
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    assert shown in {now.strftime("%H:%M"), (now - timedelta(minutes=1)).strftime("%H:%M")}
    assert page.locator("[data-date]").inner_text() == f"{now.year}年{now.month}月{now.day}日星期{'一二三四五六日'[now.weekday()]}"
    context.close()


def test_tapping_a_tile_navigates_through_htmx_without_a_page_load(page, base_url):
    page.goto(base_url + "/")
    page.evaluate("window.__samePage = true")
    page.get_by_role("link", name=re.compile("我的积分")).tap()
    expect(page.locator("h1")).to_have_text("我的积分")
    assert page.url == base_url + "/points"
    assert page.evaluate("window.__samePage") is True  # swapped by htmx, not reloaded
    assert page.title().startswith("我的积分")
    page.get_by_role("link", name="返回首页").tap()
    expect(page.locator("h1")).to_have_text("欢迎")
    assert page.evaluate("window.__samePage") is True


def test_english_switch(page, base_url):
    page.goto(base_url + "/points")
    page.get_by_role("button", name="English").tap()
    expect(page.locator("h1")).to_have_text("My points")
    assert page.url == base_url + "/points"
    expect(page.get_by_role("link", name="Back to home")).to_be_visible()
    page.get_by_role("button", name="中文").tap()
    expect(page.locator("h1")).to_have_text("我的积分")


def test_elder_mode_makes_text_at_least_a_quarter_larger(page, base_url, artifacts):
    page.goto(base_url + "/")
    size = lambda: page.evaluate("parseFloat(getComputedStyle(document.querySelector('.notice p')).fontSize)")  # noqa: E731
    tile = lambda: page.locator(".tile").first.bounding_box()["height"]  # noqa: E731
    normal_text, normal_tile = size(), tile()
    assert normal_text >= 24
    page.get_by_role("button", name="长辈模式").tap()
    expect(page.locator("html")).to_have_class("elder")
    page.wait_for_load_state("load")
    assert size() / normal_text >= 1.25
    assert tile() / normal_tile >= 1.25
    page.screenshot(path=str(artifacts / "home-elder.png"))


def test_every_visitor_control_is_at_least_60_by_60_css_px(page, base_url):
    checked = 0
    for _screen in visitor_screens(page, base_url):
        checked += assert_touch_targets(page)
    assert checked >= 30


def test_visitor_pages_have_no_serious_accessibility_violations(page, base_url):
    for _screen in visitor_screens(page, base_url):
        assert_accessible(page)
    # Elder mode and English must pass too.
    page.goto(base_url + "/")
    page.get_by_role("button", name="长辈模式").tap()
    expect(page.locator("html")).to_have_class("elder")
    page.get_by_role("button", name="English").tap()
    expect(page.locator("h1")).to_have_text("Welcome")
    assert_accessible(page)


def test_unknown_page_is_a_chinese_touch_page_with_a_way_home(page, base_url):
    response = page.goto(base_url + "/no/such/page")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("页面不存在")
    page.get_by_role("link", name="返回首页").tap()
    expect(page.locator("h1")).to_have_text("欢迎")
