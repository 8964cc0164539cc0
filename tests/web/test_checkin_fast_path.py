"""The phone check-in's fast path (issue 9): its in-process rate limit (kiosk.limits) and its
prebuilt confirmation page (kiosk.web.prebuilt).

The route's limits themselves are guarded by test_phone_checkins_are_rate_limited_per_address
(test_checkin_http_race.py) and test_one_phone_pass_checks_in_a_few_numbers_not_many
(test_security_inputs.py); both fail with the route's limit decorator removed (tried).
"""

from __future__ import annotations

import re

import pytest

from kiosk import limits
from kiosk.checkin.services import poster_token
from kiosk.signing import TokenSigner
from tests.helpers import TEST_SIGNING_KEY, open_activity_now, register


def phone_form(app, activity, language: str = "zh"):
    phone = app.test_client(enrolled=False)
    token = poster_token(activity, TokenSigner(TEST_SIGNING_KEY, purpose="checkin-code"), "XH-CY-CY1")
    html = phone.get(f"/c/{token}", headers={"Accept-Language": language}).get_data(as_text=True)
    return phone, dict(re.findall(r'name="(csrf_token|pass|activity)" value="([^"]*)"', html))


def check_in(phone, form, number: str, language: str = "zh"):
    return phone.post("/c/checkin", data=form | {"phone": number}, headers={"Accept-Language": language})


@pytest.fixture
def clock(monkeypatch):
    state = {"now": 1000.0}
    monkeypatch.setattr(limits.time, "monotonic", lambda: state["now"])

    def advance(seconds: float) -> None:
        state["now"] += seconds

    return advance


def test_the_window_opens_again_after_its_period(clock):
    windows = limits.Windows()
    key = ("phone-checkin", "10.0.0.7")
    assert [windows.hit(key, 3, 60.0) for _ in range(4)] == [True, True, True, False]
    assert windows.hit(("phone-checkin", "10.0.0.8"), 3, 60.0)  # another phone has its own
    clock(59)
    assert not windows.hit(key, 3, 60.0)
    clock(1)
    assert windows.hit(key, 3, 60.0)


def test_expired_windows_are_swept(clock):
    windows = limits.Windows()
    for address in range(100):
        windows.hit(("phone-checkin", f"10.0.0.{address}"), 30, 60.0)
    assert len(windows) == 100
    clock(limits.SWEEP_SECONDS)
    windows.hit(("phone-checkin", "10.0.1.1"), 30, 60.0)
    assert len(windows) == 1


def test_limit_strings_are_read_like_flask_limiters():
    assert limits.amount_and_period("30 per minute") == (30, 60.0)
    assert limits.amount_and_period("3 per 10 minutes") == (3, 600.0)


def test_a_pass_counts_only_successful_checkins(app, open_activity):
    app.config["PHONE_CHECKIN_RATE_LIMIT"] = "1000 per minute"
    phone, form = phone_form(app, open_activity)
    statuses = [check_in(phone, form, number).status_code for number in ("13700000001", "13700000001", "1370000", "13700000002", "13700000003")]
    assert statuses == [200, 409, 422, 200, 200]  # a repeat and a typo do not use up the pass
    assert check_in(phone, form, "13700000004").status_code == 429


def test_limits_off_when_the_app_says_so(app, open_activity):
    app.config["RATELIMIT_ENABLED"] = False
    app.config["PHONE_CHECKIN_RATE_LIMIT"] = "1 per minute"
    phone, form = phone_form(app, open_activity)
    assert [check_in(phone, form, f"1370000000{i}").status_code for i in range(3)] == [200, 200, 200]


def test_the_prebuilt_confirmation_shows_each_visitors_own_values(app, session):
    """One prebuilt page per variant: a member's name and balance, then a guest's number, then
    another member, in both languages; markup in a title is escaped."""
    activity = open_activity_now(session, title="<i>书法</i> & 绘画", points="3")
    register(session, name="张建华", phone="13812345678")
    register(session, name="李秀英", phone="13812340000")
    session.commit()
    phone, form = phone_form(app, activity)
    first = check_in(phone, form, "13812345678").get_data(as_text=True)
    assert "签到成功：张*华，&lt;i&gt;书法&lt;/i&gt; &amp; 绘画。积分 +3" in re.sub(r"<[^>]+>", "", first) and "<i>书法" not in first
    # The names are pieces of their own (the phone never breaks 张*华 or the title inside).
    assert '<span class="nowrap">张*华，</span><span class="name-text">&lt;i&gt;书法&lt;/i&gt; &amp; 绘画。</span>' in first
    assert "您现在共有 3 积分" in first and "登记会员" not in first
    guest = check_in(phone, form, "13900001111").get_data(as_text=True)
    assert "139****1111" in guest and "积分" not in guest.split("<main")[1].split("</main>")[0].replace("得积分", "")
    assert "登记会员" in guest and "张*华" not in guest
    phone, form = phone_form(app, activity, "en")
    english = check_in(phone, form, "13812340000", "en").get_data(as_text=True)
    assert "You now have 3 points." in english and "李*英" in english and "张*华" not in english
    assert re.search(r'name="csrf_token" value="[^"]{20,}"', english)  # the visitor's own token, filled in
