"""The staff side in a real Chromium: every main page passes axe, and consequential buttons ask first."""

import re

from playwright.sync_api import expect

from tests.browser.checks import assert_accessible, staff_login

ADMIN = ("demo-admin", "kiosk-demo-admin")


def test_main_staff_pages_pass_axe_including_a_form_with_errors(serve, page):
    base_url = serve()
    staff_login(page, base_url, *ADMIN)
    assert_accessible(page)
    visited = []
    for path in (
        "/staff/activities/",
        "/staff/activities/new",
        "/staff/members/",
        "/staff/members/new",
        "/staff/rewards/",
        "/staff/rewards/redemptions",
        "/staff/users",
        "/staff/audit",
        "/staff/password",
    ):
        response = page.goto(base_url + path)
        assert response.status == 200, path
        assert_accessible(page)
        visited.append(path)
    page.goto(base_url + "/staff/members/")
    page.locator("table a[href*='/staff/members/']").first.click()
    expect(page.locator("h1")).to_be_visible()
    assert_accessible(page)
    page.goto(base_url + "/staff/activities/")
    page.locator("table a[href*='/staff/activities/']").first.click()
    expect(page.get_by_role("button", name="取消活动")).to_be_visible()
    assert_accessible(page)

    # A form sent empty: every error shows at once, each tied to its input, and axe still passes.
    page.goto(base_url + "/staff/activities/new")
    page.get_by_role("button", name=re.compile("保存")).click()
    title = page.locator("#title")
    expect(title).to_have_attribute("aria-invalid", "true")
    expect(title).to_have_attribute("aria-describedby", "title-error")
    expect(page.locator("#category-error")).to_be_visible()
    assert_accessible(page)
    assert len(visited) == 9


def test_cancelling_an_activity_asks_in_a_dialog_not_a_native_confirm(serve, page):
    """Fails with static/js/confirm.js emptied: the click cancels the activity at once."""
    base_url = serve()
    native = []
    page.on("dialog", lambda dialog: (native.append(dialog.message), dialog.dismiss()))
    staff_login(page, base_url, *ADMIN)
    page.goto(base_url + "/staff/activities/")
    page.locator("table a[href*='/staff/activities/']").first.click()
    detail_url = page.url
    cancel = page.get_by_role("button", name="取消活动")

    cancel.click()
    dialog = page.locator("dialog.confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("确定取消活动「")
    assert_accessible(page)
    dialog.get_by_role("button", name="不，返回").click()
    expect(dialog).to_have_count(0)
    assert page.url == detail_url
    expect(cancel).to_be_visible()  # nothing was sent

    cancel.click()
    page.locator("dialog.confirm-dialog").get_by_role("button", name="确定").click()
    expect(page.get_by_role("button", name="重新开放")).to_be_visible()
    assert native == []
