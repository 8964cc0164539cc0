"""Issue 10 through the Flask client: a finished task ends the visit, typed digits survive an
error, the count is fresh, the attended figure ignores undone check-ins, phones get their own
language. Each test failed before its fix (run against the commit before it)."""

import re
from zoneinfo import ZoneInfo

from sqlalchemy import select

from kiosk.checkin import services as checkin_services
from kiosk.checkin.models import CheckinMethod
from kiosk.checkin.settings import code_signer, rules
from kiosk.db import write_transaction
from kiosk.devices.models import KioskDevice
from kiosk.points.models import PointsReason
from kiosk.points.services import award_points, balance, save_reward
from kiosk.staff.models import AuditEntry
from tests.helpers import kiosk_post, register, scan, token_for, visible_text


def keypad_post(client, activity_id, phone):
    return kiosk_post(client, f"/checkin/{activity_id}/phone", {"phone": phone})


def test_a_redemption_ends_what_the_card_allows(app, session):
    member = register(session)
    with write_transaction(session):
        award_points(session, member.id, 100, PointsReason.CORRECTION, note="t")
    reward = save_reward(session, None, name="环保袋", description="", cost=10, stock=9, actor=None)
    session.commit()
    visitor = app.test_client()
    scan(visitor, token_for(session, member.id))
    confirm = visitor.get(f"/points/rewards/{reward.id}").get_data(as_text=True)
    key = re.search(r'name="request_key" value="(\w+)"', confirm).group(1)
    done = kiosk_post(visitor, "/points/redeem", {"reward_id": reward.id, "request_key": key})
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and 'data-finish-seconds="15"' in body and 'data-finish-url="/"' in body
    assert "秒后关闭" in body and ">完成<" in body
    # The next visitor (or the back button) sees nobody's points and cannot spend them.
    page = visitor.get("/points").get_data(as_text=True)
    assert "data-balance" not in page and 'href="/points/rewards/' not in page
    assert visitor.get(f"/points/rewards/{reward.id}").status_code == 403
    confirm_again = kiosk_post(visitor, "/points/redeem", {"reward_id": reward.id, "request_key": "f" * 32})
    assert confirm_again.status_code == 403
    session.rollback()
    assert balance(session, member.id) == 90
    # The audit names the kiosk it happened on (the test client's enrolled device).
    audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "points.redeem"))
    device_id = session.scalar(select(KioskDevice.id).order_by(KioskDevice.id.desc()))
    assert audit.actor_name == "kiosk" and f"device={device_id}" in audit.detail


def test_attended_counts_only_check_ins_that_stand(app, session, open_activity, make_staff):
    member = register(session)
    session.commit()
    staff = make_staff()
    result = checkin_services.check_in(
        session, open_activity.id, rules=rules(app.config), method=CheckinMethod.STAFF, staff=staff, member=member, reason="补签"
    )
    session.commit()
    visitor = app.test_client()
    scan(visitor, token_for(session, member.id))
    assert "已参加活动 1 次" in visitor.get("/points").get_data(as_text=True)
    checkin_services.undo_checkin(session, result.checkin_id, staff=staff, reason="签错了", rules=rules(app.config))
    session.commit()
    assert "已参加活动 0 次" in visitor.get("/points").get_data(as_text=True)


def test_the_keypad_keeps_the_digits_after_an_error_and_shows_them_grouped(app, open_activity):
    visitor = app.test_client()
    refused = keypad_post(visitor, open_activity.id, "1381234567")
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "您输入了 10 位" in body
    assert 'name="phone" value="1381234567"' in body and "138 1234 567<" in body
    junk = keypad_post(visitor, open_activity.id, "<b>12</b>").get_data(as_text=True)
    assert 'name="phone" value="12"' in junk and "<b>" not in junk


def test_a_check_in_answers_with_the_new_count_and_a_countdown(app, open_activity):
    visitor = app.test_client()
    done = keypad_post(visitor, open_activity.id, "13812345678").get_data(as_text=True)
    assert re.search(rf'id="live-count-value-{open_activity.id}" hx-swap-oob="innerHTML"><strong data-live-count>1<', done)
    assert 'data-finish-url="/"' in done and "138****5678" in done and "13812345678" not in done


def test_a_locked_kiosk_goes_back_to_its_activity_after_a_check_in(app, session, open_activity, make_staff):
    checkin_services.lock_kiosk(session, app.config["DEVICE_ID"], open_activity, staff=make_staff())
    session.commit()
    done = keypad_post(app.test_client(), open_activity.id, "13812345678").get_data(as_text=True)
    assert f'data-finish-url="/checkin/{open_activity.id}"' in done


def test_the_count_poll_answers_only_the_figure(app, open_activity):
    html = app.test_client().get(f"/checkin/{open_activity.id}/count", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert html.strip().startswith("<strong data-live-count>0</strong>")
    screen = app.test_client().get(f"/checkin/{open_activity.id}").get_data(as_text=True)
    assert screen.count('aria-live="polite"') >= 1 and 'hx-target="find [data-live-value]"' in screen


def test_a_phone_gets_its_own_language_and_a_switch(app, open_activity):
    token = checkin_services.poster_token(open_activity, code_signer(app.config), app.config["CENTRE_CODE"])
    phone = app.test_client()
    english = phone.get(f"/c/{token}", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert 'lang="en"' in english and "Your mobile number" in english and ">中文<" in english
    chinese = app.test_client().get(f"/c/{token}", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "您的手机号" in chinese and ">English<" in chinese
    # The phone pages share base.html's head (CSRF meta, htmx, the scripts).
    assert '<meta name="csrf-token"' in chinese and "htmx.min.js" in chinese


def test_visitor_dates_are_natural_words(app, open_activity):
    zone = ZoneInfo(app.config["TIMEZONE"])
    start = open_activity.starts_at.astimezone(zone)
    screen = app.test_client().get(f"/checkin/{open_activity.id}").get_data(as_text=True)
    text = visible_text(screen)
    assert f"今天 {start:%H:%M}" in text or f"昨天 {start:%H:%M}" in text
    assert not re.search(r"\d{4}-\d{2}-\d{2}", screen.split("</header>")[1])


def staff_at(app, base_url: str):
    """A logged-in staff client that opens the pages at base_url (e.g. the PC's loopback)."""
    from tests.helpers import CSRF_META

    client = app.test_client()
    token = CSRF_META.search(client.get("/staff/login", base_url=base_url).get_data(as_text=True)).group(1)
    client.post("/staff/login", data={"username": "li.staff", "password": "correct-horse-1", "csrf_token": token}, base_url=base_url)
    return client


def test_staff_activity_pages_warn_when_qr_codes_point_at_loopback(app, make_staff, open_activity):
    from tests.helpers import make_app

    make_staff("li.staff", "correct-horse-1", "staff")
    pages = (f"/staff/activities/{open_activity.id}", f"/staff/activities/{open_activity.id}/poster", f"/staff/activities/{open_activity.id}/rotating")
    on_pc, on_lan = staff_at(app, "http://127.0.0.1:8000"), staff_at(app, "http://192.168.1.20:8000")
    for path in pages:
        loopback = on_pc.get(path, base_url="http://127.0.0.1:8000").get_data(as_text=True)
        assert 'data-qr-warning="loopback"' in loopback and "手机无法打开这些二维码" in loopback and "http://127.0.0.1:8000" in loopback, path
        assert 'data-qr-warning="unset"' in on_lan.get(path, base_url="http://192.168.1.20:8000").get_data(as_text=True), path
    configured = staff_at(make_app(app.instance_path, PUBLIC_BASE_URL="http://192.168.1.20:8000"), "http://127.0.0.1:8000")
    assert "data-qr-warning" not in configured.get(pages[0], base_url="http://127.0.0.1:8000").get_data(as_text=True)


def test_the_qr_address_rule():
    from kiosk.checkin.settings import qr_address_warning

    assert qr_address_warning("", "http://127.0.0.1:8000/") == "loopback"
    assert qr_address_warning("http://localhost:8000", "http://192.168.1.20/") == "loopback"
    assert qr_address_warning("http://[::1]:8000", "http://x/") == "loopback"
    assert qr_address_warning("", "http://0.0.0.0:8000/") == "loopback"
    assert qr_address_warning("", "http://192.168.1.20:8000/") == "unset"
    assert qr_address_warning("http://192.168.1.20:8000", "http://127.0.0.1:8000/") is None
    assert qr_address_warning("http://kiosk.cuiyuan.lan", "http://127.0.0.1/") is None


# ---- the card number a person keys in when the scanner fails ----


def signer():
    from kiosk.signing import TokenSigner
    from tests.helpers import TEST_SIGNING_KEY

    return TokenSigner(TEST_SIGNING_KEY, purpose="member-card")


def test_a_card_number_is_the_member_number_and_check_digits_of_this_card(session):
    import pytest

    from kiosk.members.services import CardError, card_number, reissue_card, resolve_card_number

    member = register(session)
    other = register(session, name="李秀英", phone="13900000002")
    session.commit()
    number = card_number(member, signer())
    assert len(number) == 10 and number.startswith(member.member_number)
    assert resolve_card_number(session, f"{number[:6]} {number[6:]}", signer()) == member
    wrong = [member.member_number, number[:6] + f"{(int(number[6:]) + 1) % 10000:04d}", other.member_number + number[6:], "9" * 10, "", "abcdefghij"]
    for text in wrong:
        with pytest.raises(CardError) as refused:
            resolve_card_number(session, text, signer())
        assert refused.value.code == "card_number_wrong"  # one answer: no hint which members exist
    reissue_card(session, member, actor=None)
    session.commit()
    with pytest.raises(CardError):
        resolve_card_number(session, number, signer())  # the lost card's number died with it
    assert resolve_card_number(session, card_number(member, signer()), signer()) == member


def test_my_points_by_card_number_and_guessing_is_limited(app, session):
    from kiosk.members.services import card_number

    member = register(session)
    with write_transaction(session):
        award_points(session, member.id, 42, PointsReason.CORRECTION, note="t")
    number = card_number(member, signer())
    visitor = app.test_client()
    shown = kiosk_post(visitor, "/points/card", {"card_number": number})
    assert shown.status_code == 200 and "data-balance>42<" in shown.get_data(as_text=True).replace('data-balance">', "data-balance>")
    assert "data-balance" in visitor.get("/points").get_data(as_text=True)
    refused = kiosk_post(app.test_client(), "/points/card", {"card_number": "0000011234"}).get_data(as_text=True)
    assert "卡号不对" in refused and 'value="0000011234"' in refused  # the digits stay for a correction
    # CARD_NUMBER_RATE_LIMIT (10 a minute from the kiosk): guessing 10 000 check digits takes days.
    guesser = app.test_client()
    answers = [kiosk_post(guesser, "/points/card", {"card_number": member.member_number + f"{n:04d}"}).status_code for n in range(10)]
    assert answers[:8].count(422) >= 7 and answers[-1] == 429, answers


def test_the_check_in_keypad_takes_a_card_number(app, session, open_activity):
    from kiosk.members.services import card_number

    member = register(session)
    session.commit()
    done = keypad_post(app.test_client(), open_activity.id, card_number(member, signer()))
    assert done.status_code == 200 and '签到成功：张*华，<span class="name-text">书法课</span>。积分 +5' in done.get_data(as_text=True)


def test_the_printed_card_carries_its_number(app, session, make_staff):
    from kiosk.members.services import card_number
    from tests.helpers import login

    member = register(session)
    session.commit()
    make_staff("li.staff", "correct-horse-1", "staff")
    staff = app.test_client()
    login(staff, "li.staff", "correct-horse-1")
    number = card_number(member, signer())
    assert f"data-card-number>{number[:6]} {number[6:]}<" in staff.get(f"/staff/members/{member.id}/card").get_data(as_text=True)
