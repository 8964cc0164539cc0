"""The guard of issue 10: every visitor screen and state holds at every kiosk size.

Each kiosk screen (home with the date in the top bar, attract, every tile, the reading hall
while typing and a book's page with its shelf map, a booking service's day strip and slots, its
keypad and ticket, the check-in list, the keypad empty / refused / done, 我的积分 with a card,
the reward confirmation, the pickup code, a refusal, 404) is visited
at 1080×1920, 1920×1080 and 1280×800, in Chinese and English, normal and elder mode; the
phone pages a QR opens at 390×844 in both languages. On each: no horizontal scroll, the
primary action inside the viewport without scrolling, no overlapping text runs, no squeezed
wrapping, text ≥ 24 px (≥ 30 px elder), targets ≥ 60×60 (tests/browser/layout_checks.py); axe
(nothing serious or critical) once per screen per language and mode, at portrait size.
A screenshot of each goes to tests/artifacts/screens/ and tests/artifacts/screens.html lists them.

Shown to catch its bugs before they were fixed: this module and layout_checks.py, copied into
a checkout of main before the fixes, reported the portrait collapse (portrait-zh-normal, check-in
result: "squeezed line 29px (< 4 characters) in «已签到»", the date one piece a line), the hidden
签到 (landscape-zh-elder: ".keypad-submit outside the viewport: 1344,987–1824,1106 in 1920×1080")
and the badge on the titles (portrait-en-elder: "text overlaps: «Reading hall» and «Coming
soon»"), with the 21.6 px badges and the orphan 分 of 参加活动得积/分.

Session 7's screenshot review added the reading hall while typing, the book page, the date in
the top bar, two-character orphans and English dates split at their spaces; on the old
screens these reported (see the report of branch ux8): the hits under the keyboard at 1280×800
elder, 返回检索 and the status below the fold, the shelf map's 24 px letters in elder mode,
the missing top-bar date, 号。 alone on a line.

Session 8 added words that never break (a name's words, the tiles' 参加) and, in elder mode, a
top-bar date larger than the smallest text; on main's screens these reported (see the report of
branch ux9) 参/加 on the check-in tile, 人民文/学出版社 in a hit, the centre's and the activity's
names broken on the phone's done page, and the elder date at the size of the smallest text.
"""

from __future__ import annotations

import html
import pprint
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from kiosk.catalogue.models import Copy
from kiosk.catalogue.services import lend
from kiosk.checkin import services as checkin_services
from kiosk.checkin import settings as checkin_settings
from kiosk.checkin.models import Activity
from kiosk.db import write_transaction
from kiosk.extensions import db
from kiosk.members.scan import member_signer
from kiosk.members.services import card_token, register_member
from kiosk.points.models import PointsReason
from kiosk.points.services import award_points, save_reward
from kiosk.serving import create_server
from tests.browser.checks import assert_accessible
from tests.browser.conftest import enrol
from tests.browser.layout_checks import layout_problems
from tests.helpers import copy_database, make_app, run_server

MARKET = "西红集市之“茶香品红韵”"  # the demo activity open all day
SIZES = {"portrait": (1080, 1920), "landscape": (1920, 1080), "small": (1280, 800)}
PHONE = (390, 844)
SHOTS = "screens"
# Words never split across lines (layout_checks.py): the words of the centre's name (name_text
# breaks only between them), of the demo activity, of the first hits' authors and publishers,
# and of the home tiles' subtitles (参/加 on a tile at 1080×1920 elder).
WORDS = (
    *("翠苑街道", "翠苑一区", "党群服务中心"),
    *("西红集市", "茶香品红韵"),
    *("曹雪芹", "高鹗", "张爱玲", "人民文学", "北京十月文艺", "出版社", "新知三联书店"),
    *("扫码", "签到", "参加", "活动", "积分", "理发", "缝补", "法律咨询", "找书", "看书", "书架", "好礼"),
    "一体机",  # the ticket QR's caption (之后在一 / 体机上扫描, session 9)
)


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory, migrated_database):
    """One demo kiosk for the module, with a member card and a reward with plenty of stock."""
    instance = tmp_path_factory.mktemp("screens")
    copy_database(migrated_database, instance / "kiosk.sqlite3")
    # Every size, language and mode types the same numbers on one kiosk within a minute: the
    # rate limits (tested on their own) would answer "too many attempts" instead of the screens.
    no_limit = "100000 per minute"
    app = make_app(
        instance,
        IDLE_SECONDS=3600,
        KIOSK_CHECKIN_RATE_LIMIT=no_limit,
        NUMBER_CHECKIN_RATE_LIMIT=no_limit,
        CARD_NUMBER_RATE_LIMIT=no_limit,
        PHONE_CHECKIN_RATE_LIMIT=no_limit,
    )
    with app.app_context():
        from kiosk.demo import load_demo

        load_demo(db.session)
        member = register_member(
            db.session, name="张建华", phone="13700000009", community="翠苑一区", age_band="70-79", consent=True, consent_version="t", actor=None
        )
        with write_transaction(db.session):
            award_points(db.session, member.id, 10_000, PointsReason.CORRECTION, note="test")
        reward = save_reward(db.session, None, name="环保袋", description="布袋一只", cost=10, stock=5000, actor=None)
        # 我的借阅: two books out, one of them overdue (the demo reading hall's copies).
        zone = ZoneInfo("Asia/Shanghai")
        first, second = db.session.scalars(select(Copy.barcode).order_by(Copy.id).limit(2))
        lend(db.session, member, first, zone=zone, staff=None)
        lend(db.session, member, second, zone=zone, days=3, now=datetime.now(zone) - timedelta(days=10), staff=None)
        market = db.session.query(Activity).filter_by(title=MARKET).one()
        db.session.commit()
        info = {
            "card": card_token(member, member_signer(app.config), app.config["CENTRE_CODE"]),
            "reward": reward.id,
            "market": market.id,
            "poster": "/c/" + checkin_services.poster_token(market, checkin_settings.code_signer(app.config), app.config["CENTRE_CODE"]),
        }
        db.session.remove()
    server = create_server(app, host="127.0.0.1", port=0, threads=8, config=app.config, asyncore_loop_timeout=0.2)
    stop = run_server(server)
    info["url"] = f"http://127.0.0.1:{server.effective_port}"
    yield info
    stop()


@pytest.fixture(scope="module")
def shots(artifacts):
    folder = artifacts / SHOTS
    folder.mkdir(exist_ok=True)
    yield folder
    _contact_sheet(folder, artifacts / "screens.html")


def _contact_sheet(folder: Path, target: Path) -> None:
    names = sorted(p.name for p in folder.glob("*.jpg"))
    items = "\n".join(
        f'<figure><a href="{SHOTS}/{html.escape(n)}"><img src="{SHOTS}/{html.escape(n)}" loading="lazy" alt=""></a>'
        f"<figcaption>{html.escape(n[:-4])}</figcaption></figure>"
        for n in names
    )
    target.write_text(
        "<!doctype html><meta charset=utf-8><title>Visitor screens</title>"
        "<style>body{font:14px sans-serif;display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;width:220px}"
        "img{max-width:220px;max-height:390px;border:1px solid #999}</style>\n" + items,
        encoding="utf-8",
    )


class Screens:
    """Visits screens in one context and collects what each check found."""

    def __init__(self, page, name: str, elder: bool, folder: Path, axe: bool):
        self.page, self.name, self.elder, self.folder, self.axe = page, name, elder, folder, axe
        self.problems: dict[str, list[str]] = {}

    def check(self, screen: str, *primary: str) -> None:
        self.page.wait_for_load_state("load")
        found = layout_problems(self.page, primary, elder=self.elder, words=WORDS)
        if found:
            self.problems[screen] = found
        self.page.screenshot(path=str(self.folder / f"{screen}--{self.name}.jpg"), type="jpeg", quality=55)
        if self.axe:
            try:
                assert_accessible(self.page)
            except AssertionError as error:
                self.problems.setdefault(screen, []).append(f"axe: {error}")


def _set_mode(page, url: str, locale: str, elder: bool) -> None:
    page.goto(url + "/")
    if locale == "en":
        page.get_by_role("button", name="English").tap()
        expect(page.locator("h1")).to_have_text("Welcome")
    if elder:
        page.locator("form[action='/elder'] button").tap()
        expect(page.locator("html")).to_have_class("elder")


def _tap_digits(page, digits: str) -> None:
    for digit in digits:
        page.locator(f".key[data-key='{digit}']").tap()


COMBOS = [(size, locale, elder) for size in SIZES for locale in ("zh", "en") for elder in (False, True)]


@pytest.mark.parametrize(("size", "locale", "elder"), COMBOS, ids=[f"{s}-{lo}-{'elder' if e else 'normal'}" for s, lo, e in COMBOS])
def test_every_kiosk_screen_holds(browser, kiosk, shots, size, locale, elder):
    width, height = SIZES[size]
    name = f"{size}-{locale}-{'elder' if elder else 'normal'}"
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN", has_touch=True)
    enrol(context)  # the kiosk's own browser (kiosk.devices); phones below are not enrolled
    page = context.new_page()
    url = kiosk["url"]
    screens = Screens(page, name, elder, shots, axe=size == "portrait")
    try:
        _set_mode(page, url, locale, elder)
        screens.check("01-home", ".tiles", "[data-date]")  # the date with its weekday, elder mode too
        for path, screen in (("/booking", "03-booking"), ("/catalogue", "04-catalogue")):
            page.goto(url + path)
            screens.check(screen, ".btn-home")
        # The reading hall while typing: the first hit in view beside (or under) the keyboard
        # before 搜索 is tapped; then a book: its status, shelf and 返回检索 without scrolling.
        for letter in "hlm":
            page.locator(f"[data-kb='{letter}']").tap()
        expect(page.locator(".book-hit").first).to_contain_text("红楼梦")
        screens.check("04b-catalogue-typed", ".book-hit", "[data-kb='m']")
        page.locator(".book-hit a").first.tap()
        expect(page.locator("[data-availability]")).to_be_visible()
        screens.check("04c-book", "[data-availability]", "[data-shelf]", "[data-back-to-search]")
        # Booking (issue 11): a service's day strip and slots, the keypad, the ticket.
        page.goto(url + "/booking")
        page.locator(".service-tile").first.tap()
        expect(page.locator(".day.is-chosen")).to_be_visible()
        screens.check("03b-booking-slots", ".day.is-chosen", "a.slot")
        page.locator("a.slot").first.tap()
        expect(page.locator("[data-keypad]")).to_be_visible()
        _tap_digits(page, f"1370{COMBOS.index((size, locale, elder)):07d}")
        screens.check("03c-booking-keypad", ".keypad-submit", "[data-keypad-display]")
        page.locator(".keypad-submit").tap()
        expect(page.locator("[data-ticket]")).to_be_visible()
        screens.check("03d-booking-ticket", "[data-ticket]", "[data-finish]", "[data-finish-longer]")
        page.goto(url + "/")  # ends the visit
        page.goto(url + "/points")
        screens.check("05-points-no-card", ".keypad-submit")
        page.goto(url + "/checkin")
        screens.check("06-checkin-list", ".activity-tile")
        page.goto(url + f"/checkin/{kiosk['market']}")
        expect(page.locator("[data-keypad]")).to_be_visible()
        screens.check("07-keypad-empty", ".keypad-submit", "[data-live-count]")
        _tap_digits(page, "13812")
        page.locator(".keypad-submit").tap()
        expect(page.locator("#checkin-result .message-error")).to_be_visible()
        screens.check("08-keypad-error", ".keypad-submit", "#checkin-result .message-error")
        page.locator("[data-key-clear]").tap()
        _tap_digits(page, f"1390{COMBOS.index((size, locale, elder)):07d}")
        page.locator(".keypad-submit").tap()
        expect(page.locator(".checkin-success")).to_be_visible()
        screens.check("09-keypad-done", ".checkin-success", "[data-finish]", "[data-finish-longer]")
        page.goto(url + "/")
        page.keyboard.type(kiosk["card"], delay=3)
        page.keyboard.press("Enter")
        page.wait_for_url(url + "/points")
        expect(page.locator("[data-balance]")).to_be_visible()
        screens.check("10-points-member", "[data-balance]", ".reward .btn-primary")
        page.locator("[data-my-loans-link]").tap()
        expect(page.locator("[data-my-loans] [data-overdue]")).to_be_visible()
        screens.check("10b-my-loans", "[data-my-loans]")
        page.goto(url + f"/points/rewards/{kiosk['reward']}")
        screens.check("11-reward-confirm", ".confirm button[type=submit]")
        page.locator(".confirm button[type=submit]").tap()
        expect(page.locator("[data-pickup-code]")).to_be_visible()
        screens.check("12-pickup-code", "[data-pickup-code]", "[data-finish]", "[data-finish-longer]")
        page.goto(url + "/")  # ends the visit
        page.goto(url + f"/points/rewards/{kiosk['reward']}")
        screens.check("13-refused", ".message-error", "main .btn")
        page.goto(url + "/no-such-page")
        screens.check("14-not-found", ".error-panel .btn-home")
        page.goto(url + "/attract")
        screens.check("02-attract", ".attract-call")
    finally:
        context.close()
    assert not screens.problems, pprint.pformat(screens.problems, width=160)


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_every_phone_screen_holds(browser, kiosk, shots, locale):
    context = browser.new_context(
        viewport={"width": PHONE[0], "height": PHONE[1]}, is_mobile=True, has_touch=True, locale="en-GB" if locale == "en" else "zh-CN"
    )
    page = context.new_page()
    url = kiosk["url"]
    screens = Screens(page, f"phone-{locale}", False, shots, axe=True)
    try:
        page.goto(url + kiosk["poster"])
        expect(page.locator("html")).to_have_attribute("lang", "en" if locale == "en" else "zh-CN")
        screens.check("20-phone-form", "button[type=submit]")
        # The centre's name in the header on two lines at most, on a 360 px phone too (it took three).
        for width in (360, PHONE[0]):
            page.set_viewport_size({"width": width, "height": PHONE[1]})
            lines = page.evaluate(
                "(e => Math.round(e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)))(document.querySelector('.phone-header-centre .name-text'))"
            )
            if lines > 2:
                screens.problems.setdefault("20-phone-form", []).append(f"the centre's name on {lines} lines at {width} px")
        page.locator("#phone").fill("1381234567")
        page.locator("button[type=submit]").tap()
        expect(page.locator(".message-error")).to_be_visible()
        screens.check("21-phone-error", "button[type=submit]", ".message-error")
        page.locator("#phone").fill("13700000009" if locale == "zh" else "13600000002")  # a member, a guest
        page.locator("button[type=submit]").tap()
        expect(page.locator(".checkin-success")).to_be_visible()
        screens.check("22-phone-done", ".checkin-success")
        page.goto(url + "/c/C1.NOT-A-CODE")
        screens.check("23-phone-refused", ".message-error")
    finally:
        context.close()
    assert not screens.problems, pprint.pformat(screens.problems, width=160)
