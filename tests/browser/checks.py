"""Checks every visitor screen must pass (DESIGN.md §8): target sizes and accessibility."""

from axe_playwright_python.sync_playwright import Axe

MIN_TARGET_PX = 60
_AXE = Axe()


def assert_touch_targets(page) -> int:
    """Every visible control is at least 60×60 CSS px. Returns how many were measured."""
    checked = 0
    for control in page.locator("a, button, input:not([type=hidden]), select, [role=button]").all():
        if not control.is_visible():
            continue
        box = control.bounding_box()
        assert box["width"] >= MIN_TARGET_PX and box["height"] >= MIN_TARGET_PX, (page.url, control.inner_text()[:20], box)
        checked += 1
    return checked


def assert_accessible(page) -> None:
    """No serious or critical axe-core violation."""
    results = _AXE.run(page)
    bad = [(v["id"], v["impact"], len(v["nodes"])) for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], (page.url, bad)


def staff_login(page, base_url: str, username: str, password: str) -> None:
    from playwright.sync_api import expect

    page.goto(base_url + "/staff/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("h1")).to_contain_text("您好")
