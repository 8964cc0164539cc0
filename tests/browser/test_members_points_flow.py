"""Register → print card → scan at the kiosk → see balance → redeem, in a real Chromium."""

import io
import re

import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from kiosk.points.services import save_reward
from kiosk.staff.services import create_staff_user
from tests.browser.checks import assert_accessible, assert_touch_targets, staff_login


def seed(session):
    create_staff_user(session, "li.staff", "correct-horse-1", "staff", display_name="李老师")
    save_reward(session, None, name="环保袋", description="布袋一只", cost=10, stock=3, actor=None)


def test_register_print_scan_balance_redeem(browser, serve, page, artifacts):
    base_url = serve(setup=seed, demo=False)
    staff = browser.new_context(viewport={"width": 1280, "height": 900})
    desk = staff.new_page()
    staff_login(desk, base_url, "li.staff", "correct-horse-1")

    desk.goto(base_url + "/staff/members/new")
    desk.get_by_label("姓名").fill("张建华")
    desk.get_by_label("手机号").fill("13812345678")
    desk.get_by_label("社区/村").fill("翠苑一区")
    desk.get_by_label("年龄段").select_option("70-79")
    desk.get_by_label("会员已阅读并同意隐私告知").check()
    desk.get_by_role("button", name="登记").click()
    expect(desk.locator(".flashes")).to_contain_text("会员已登记")
    expect(desk.locator(".phone")).to_have_text("138****5678")

    desk.get_by_label("积分（正数增加，负数扣减）").fill("30")
    desk.get_by_label("原因").fill("补录 11 月书法课")
    desk.get_by_role("button", name="添加记录").click()
    expect(desk.locator("[data-balance]")).to_have_text("30")

    desk.get_by_role("link", name="打印会员卡").click()
    card = desk.locator(".member-card")
    expect(card).to_contain_text("张*华")
    card.screenshot(path=str(artifacts / "member-card.png"))
    # Read the QR off the screen the way a scanner would, with a real decoder.
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(desk.locator(".member-card-qr").screenshot())))
    assert len(decoded) == 1
    token = decoded[0].text
    assert re.fullmatch(r"M1\.XH-CY-CY1\.\d+\.1\.[\w-]{22}", token)

    # The visitor at the kiosk: the USB scanner types the card's code and Enter.
    page.goto(base_url + "/")
    page.keyboard.type(token, delay=3)
    page.keyboard.press("Enter")
    page.wait_for_url(base_url + "/points")
    expect(page.locator(".points-summary")).to_contain_text("您好，张*华")
    expect(page.locator("[data-balance]")).to_have_text("30")
    assert "张建华" not in page.content() and "13812345678" not in page.content()
    page.screenshot(path=str(artifacts / "my-points.png"))
    assert assert_touch_targets(page) > 0
    assert_accessible(page)

    page.get_by_role("link", name="兑换").first.tap()
    expect(page.locator(".confirm")).to_contain_text("确定用 10 积分兑换 环保袋 吗？")
    assert assert_touch_targets(page) > 0
    assert_accessible(page)
    page.get_by_role("button", name="确认兑换").tap()
    expect(page.locator("[data-pickup-code]")).to_have_text(re.compile(r"^\d{3} \d{3}$"))
    code = page.locator("[data-pickup-code]").inner_text().replace(" ", "")
    expect(page.locator(".done")).to_contain_text("剩余积分：20")
    assert assert_touch_targets(page) > 0
    assert_accessible(page)

    desk.goto(base_url + "/staff/rewards/")
    expect(desk.locator("[data-stock]")).to_have_text("2")
    desk.goto(base_url + "/staff/rewards/redemptions")
    expect(desk.locator("tbody")).to_contain_text(code)

    # 返回首页 ends the task: nobody's points show any more.
    page.get_by_role("link", name="返回首页").tap()
    page.get_by_role("link", name=re.compile("我的积分")).tap()
    expect(page.locator("h1")).to_have_text("我的积分")
    expect(page.locator("[data-balance]")).to_have_count(0)
    staff.close()
