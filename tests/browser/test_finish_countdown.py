"""A finished task's countdown (DESIGN.md §8, newcomer review): elder mode gets longer, and
「多看一会」 adds time twice at most, on the check-in result and the booking ticket alike.

Short countdowns set by configuration; Playwright's fake clock moves time (no waiting)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.checks import MIN_TARGET_PX
from tests.helpers import open_activity_now

SHORT = {"FINISHED_TASK_SECONDS": 4, "FINISHED_TASK_ELDER_SECONDS": 7, "FINISHED_TASK_MORE_SECONDS": 5, "FINISHED_TASK_MORE_TIMES": 2}


def _seed(session):
    open_activity_now(session, title="四点半课堂", category="after_school", place="一楼教室", points="3", policy="daily", capacity="30")


def _check_in(page, base_url, digits):
    page.get_by_role("link", name=re.compile("活动签到")).tap()
    page.get_by_role("link", name=re.compile("四点半课堂")).tap()
    for digit in digits:
        page.locator(f".key[data-key='{digit}']").tap()
    page.get_by_role("button", name="签到").tap()
    expect(page.locator(".checkin-success")).to_be_visible()


def _assert_target(locator):
    expect(locator).to_be_in_viewport()
    box = locator.bounding_box()
    assert box["width"] >= MIN_TARGET_PX and box["height"] >= MIN_TARGET_PX, box


def test_more_time_adds_seconds_twice_then_the_visit_ends(page, serve):
    base_url = serve(setup=_seed, demo=False, **SHORT)
    page.clock.install()
    page.goto(base_url + "/")
    _check_in(page, base_url, "13900002222")
    countdown, more = page.locator("[data-finish-countdown]"), page.get_by_role("button", name="多看一会")
    expect(countdown).to_have_text("4")
    _assert_target(more)
    page.clock.run_for(1_000)
    expect(countdown).to_have_text("3")
    more.tap()
    expect(countdown).to_have_text("8")
    more.tap()
    expect(countdown).to_have_text("13")
    expect(more).to_be_hidden()  # twice at most
    page.clock.run_for(12_000)
    expect(countdown).to_have_text("1")
    assert page.url.startswith(base_url + "/checkin/")  # still the result: 3 + 5 + 5 s
    page.clock.run_for(1_000)
    page.wait_for_url(base_url + "/")
    expect(page.locator("h1")).to_have_text("欢迎")


def test_elder_mode_counts_down_longer(page, serve):
    base_url = serve(setup=_seed, demo=False, **SHORT)
    page.clock.install()
    page.goto(base_url + "/")
    page.locator("form[action='/elder'] button").tap()
    expect(page.locator("html")).to_have_class("elder")
    _check_in(page, base_url, "13900003333")
    countdown = page.locator("[data-finish-countdown]")
    expect(countdown).to_have_text("7")
    _assert_target(page.get_by_role("button", name="多看一会"))
    page.clock.run_for(6_000)
    expect(countdown).to_have_text("1")
    page.clock.run_for(1_000)
    page.wait_for_url(base_url + "/")


def test_the_elder_ticket_has_the_longer_countdown_and_more_time(page, serve):
    base_url = serve(**SHORT)  # the demo's services
    page.clock.install()
    page.goto(base_url + "/")
    page.locator("form[action='/elder'] button").tap()
    expect(page.locator("html")).to_have_class("elder")
    page.goto(base_url + "/booking")
    page.locator(".service-tile").first.tap()
    page.locator("a.slot").first.tap()
    for digit in "13700004444":
        page.locator(f".key[data-key='{digit}']").tap()
    page.locator(".keypad-submit").tap()
    expect(page.locator("[data-ticket]")).to_be_visible()
    countdown = page.locator("[data-finish-countdown]")
    expect(countdown).to_have_text("7")
    page.get_by_role("button", name="多看一会").tap()
    expect(countdown).to_have_text("12")
