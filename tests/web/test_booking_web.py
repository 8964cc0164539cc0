"""Booking through the Flask client: the kiosk flow, look up / cancel, bad input, the desk."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from escpos.printer import Dummy
from sqlalchemy import func, select

from kiosk.booking import printing, services
from kiosk.booking.models import Booking, Slot
from kiosk.members.services import card_token, register_member
from kiosk.signing import TokenSigner
from kiosk.staff.models import AuditEntry
from kiosk.sync.models import OutboxEvent
from tests.helpers import TEST_SIGNING_KEY, csrf_token, login, post, visible_text

ZONE = ZoneInfo("Asia/Shanghai")
TICKETS = TokenSigner(TEST_SIGNING_KEY, purpose="booking-ticket")
CARDS = TokenSigner(TEST_SIGNING_KEY, purpose="member-card")


def tomorrow_at(hour: int, minute: int = 0) -> str:
    day = datetime.now(ZONE).date() + timedelta(days=1)
    return day.strftime("%Y%m%d") + f"{hour:02d}{minute:02d}"


def counts(session):
    session.rollback()
    return tuple(session.scalar(select(func.count()).select_from(t)) for t in (Booking, Slot, OutboxEvent))


def open_slot(client, service, slot_key):
    html = client.get(f"/booking/{service.id}/slot/{slot_key}").get_data(as_text=True)
    return re.search(r'&#34;request_key&#34;: &#34;(\w+)&#34;|"request_key": "(\w+)"', html)


def request_key(client, service, slot_key) -> str:
    match = open_slot(client, service, slot_key)
    assert match, "no request key on the slot page"
    return match.group(1) or match.group(2)


def book(client, service, slot_key, phone="13800000001", key=None):
    key = key or request_key(client, service, slot_key)
    return post(client, "/booking/book", {"service": service.id, "slot": slot_key, "request_key": key, "phone": phone}, htmx=True)


def test_the_tile_is_ready_and_the_flow_pages_render(client, haircut):
    home = client.get("/").get_data(as_text=True)
    assert "服务预约" in home
    index = client.get("/booking").get_data(as_text=True)
    assert "理发" in index and "查询或取消预约" in index
    tomorrow = (datetime.now(ZONE).date() + timedelta(days=1)).isoformat()
    page = client.get(f"/booking/{haircut.id}?day={tomorrow}").get_data(as_text=True)
    assert "余 14" in page and "明天" in page and "周" in page
    assert f'data-slot="{tomorrow_at(9)}"' in page and "个名额" in page
    slot = client.get(f"/booking/{haircut.id}/slot/{tomorrow_at(9)}").get_data(as_text=True)
    assert "请输入手机号" in slot or "输入手机号" in slot
    # One step back to the same day's times, not only 返回首页 (newcomer review).
    assert "换个时间" in slot and f'href="/booking/{haircut.id}?day={tomorrow}"' in slot
    assert re.search(r"\d+月\d+日 周. 09:00", visible_text(slot))


def test_booking_by_phone_gives_a_ticket_page_with_number_time_people_ahead_and_qr(client, session, haircut):
    response = book(client, haircut, tomorrow_at(9, 20))
    assert response.status_code == 200, response.get_data(as_text=True)
    location = response.headers["HX-Location"]
    assert location.startswith("/booking/t/B1.XH-CY-CY1.")
    ticket = client.get(location).get_data(as_text=True)
    assert "理发 A001" in ticket and "09:20" in ticket
    assert "您前面还有" not in ticket  # tomorrow's queue: people ahead is said on the day (newcomer review)
    assert "138****0001" in ticket and "13800000001" not in ticket
    assert "data:image/svg+xml;base64," in ticket and "取消预约" in ticket
    assert counts(session) == (1, 1, 1)


def test_a_double_tap_books_once(client, session, haircut):
    key = request_key(client, haircut, tomorrow_at(9))
    first = book(client, haircut, tomorrow_at(9), key=key)
    second = book(client, haircut, tomorrow_at(9), key=key)
    assert first.headers["HX-Location"] == second.headers["HX-Location"]
    assert counts(session)[0] == 1


def test_a_full_slot_says_so_and_offers_the_next_free_slots_and_the_waitlist(client, session, haircut):
    book(client, haircut, tomorrow_at(9), "13800000001")
    book(client, haircut, tomorrow_at(9), "13800000002")
    tomorrow = (datetime.now(ZONE).date() + timedelta(days=1)).isoformat()
    page = client.get(f"/booking/{haircut.id}?day={tomorrow}").get_data(as_text=True)
    full = re.search(rf'<div class="slot is-full"[^>]*data-slot="{tomorrow_at(9)}"[^>]*>(.*?)</div>', page, re.S)
    assert full and f'href="/booking/{haircut.id}/slot/{tomorrow_at(9)}"' not in page
    # Its waitlist link is a plain link: the slot around it is not aria-disabled (that disables what it holds).
    assert "aria-disabled" not in full.group(0) and f'href="/booking/{haircut.id}/slot/{tomorrow_at(9)}?waitlist=1"' in full.group(1)
    before = counts(session)
    response = book(client, haircut, tomorrow_at(9), "13800000003")
    body = response.get_data(as_text=True)
    assert response.status_code == 409 and "该时段已约满" in body and 'data-error-code="slot_full"' in body
    assert f'data-slot="{tomorrow_at(9, 20)}"' in body and "排队候补" in body
    assert counts(session) == before
    waiting = post(client, "/booking/waitlist", {"service": haircut.id, "slot": tomorrow_at(9), "phone": "13800000003"}, htmx=True)
    assert waiting.status_code == 200 and "第 1 位候补" in waiting.get_data(as_text=True)


@pytest.mark.parametrize(
    ("slot", "phone", "status", "text"),
    [
        ("LEGAL", "13800000001", 404, "该服务在这个时间没有时段"),  # a slot of another service
        ("PAST", "13800000001", 409, "该时段已过"),
        ("202699999999", "13800000001", 400, "该时段不存在"),
        ("NINE", "1380000", 422, "手机号"),
        ("NINE", "abcdefghijk", 422, "手机号"),
    ],
)
def test_bad_input_gets_a_clear_chinese_refusal_and_writes_nothing(client, session, haircut, legal, slot, phone, status, text):
    now = datetime.now(ZONE)
    keys = {"LEGAL": tomorrow_at(14), "PAST": (now - timedelta(days=1)).strftime("%Y%m%d") + "0900", "NINE": tomorrow_at(9)}
    before = counts(session)
    response = post(
        client, "/booking/book", {"service": haircut.id, "slot": keys.get(slot, slot), "request_key": services.new_request_key(), "phone": phone}, htmx=True
    )
    body = response.get_data(as_text=True)
    assert response.status_code == status and text in body and "Traceback" not in body
    assert counts(session) == before


def test_cancel_from_the_ticket_and_a_cancelled_ticket_cannot_be_cancelled_again(client, session, haircut):
    location = book(client, haircut, tomorrow_at(10)).headers["HX-Location"]
    token = location.rsplit("/", 1)[1]
    confirm = client.get(f"/booking/t/{token}/cancel").get_data(as_text=True)
    assert "确定取消 理发 A001" in confirm
    done = post(client, f"/booking/t/{token}/cancel", token_from=location)
    assert done.status_code == 200 and "已取消" in done.get_data(as_text=True)
    before = counts(session)
    again = post(client, f"/booking/t/{token}/cancel", htmx=True)
    assert again.status_code == 409 and "这个预约已经取消了" in again.get_data(as_text=True)
    assert counts(session) == before
    page = client.get(location).get_data(as_text=True)
    assert "已取消" in page and "取消预约</a>" not in page


def test_look_up_by_ticket_number_and_phone(client, haircut):
    location = book(client, haircut, tomorrow_at(10)).headers["HX-Location"]
    steps = client.get("/booking/lookup?letter=A&digits=0&key=1").get_data(as_text=True)
    assert "A01" in steps
    found = post(client, "/booking/lookup", {"letter": "A", "digits": "1", "phone": "13800000001"}, htmx=True)
    assert found.status_code == 200 and found.headers["HX-Location"] == location
    unknown = post(client, "/booking/lookup", {"letter": "A", "digits": "7", "phone": "13800000001"}, htmx=True)
    assert unknown.status_code == 404 and "没有找到这张预约凭证" in unknown.get_data(as_text=True)
    wrong_phone = post(client, "/booking/lookup", {"letter": "A", "digits": "1", "phone": "13800000002"}, htmx=True)
    assert wrong_phone.status_code == 404


def test_scanning_a_ticket_opens_it_and_a_foreign_ticket_is_refused(client, session, haircut):
    location = book(client, haircut, tomorrow_at(10)).headers["HX-Location"]
    token = location.rsplit("/", 1)[1]
    scanned = post(client, "/scan", {"code": token}, htmx=True)
    assert scanned.status_code == 200 and scanned.headers["HX-Location"] == location
    foreign = services.ticket_token(1, TICKETS, "XH-LY-HL")
    refused = post(client, "/scan", {"code": foreign}, htmx=True)
    assert refused.status_code == 403 and "这是其他服务中心的预约凭证" in refused.get_data(as_text=True)
    assert client.get(f"/booking/t/{foreign}").status_code == 403
    unknown = post(client, "/scan", {"code": services.ticket_token(999, TICKETS, "XH-CY-CY1")}, htmx=True)
    assert unknown.status_code == 404 and "没有找到这张预约凭证" in unknown.get_data(as_text=True)


def test_a_member_card_on_the_keypad_screen_books_for_the_member(client, session, haircut):
    member = register_member(session, name="王秀英", phone="13900000002", community="", age_band="60-69", consent=True, consent_version="t", actor=None)
    session.commit()
    # The keypad screen (which also gives the CSRF token) tells the scanner which slot is chosen.
    scanned = post(client, "/scan", {"code": card_token(member, CARDS, "XH-CY-CY1")}, htmx=True, token_from=f"/booking/{haircut.id}/slot/{tomorrow_at(9, 40)}")
    assert scanned.status_code == 200, scanned.get_data(as_text=True)
    assert "预约成功：理发 A001" in scanned.get_data(as_text=True)
    ticket = client.get(scanned.headers["HX-Location"]).get_data(as_text=True)
    assert "王*英" in ticket and "09:40" in ticket
    # Elsewhere the card opens 我的积分 as before.
    client.get("/")
    elsewhere = post(client, "/scan", {"code": card_token(member, CARDS, "XH-CY-CY1")}, htmx=True)
    assert elsewhere.headers["HX-Location"] == "/points"


# ---- staff ----


@pytest.fixture
def staff_client(client, make_staff):
    make_staff("li.staff", "correct-horse-1", "staff")
    login(client, "li.staff", "correct-horse-1")
    return client


def test_a_ticket_for_today_tells_the_people_ahead(client, session, haircut):
    """Today's queue is told on today's ticket (two walk-ins before this one); a ticket for
    another day says nothing about it (above)."""
    rules = services.rules_from_config(client.application.config)
    for phone in ("13800000006", "13800000007"):
        services.issue_walk_in(session, haircut.id, rules=rules, staff=None, phone=phone)
    third = services.issue_walk_in(session, haircut.id, rules=rules, staff=None, phone="13800000008")
    config = client.application.config
    token = services.ticket_token(third.booking_id, services.ticket_signer(config), config["CENTRE_CODE"])
    page = client.get(f"/booking/t/{token}").get_data(as_text=True)
    assert third.ticket in page and "您前面还有 2 人" in page


def test_the_ticket_page_counts_the_people_ahead_only_for_todays_ticket(client, session, haircut, monkeypatch):
    """Every keypad booking is followed by its ticket page; for another day's ticket the page
    shows no queue, so it does not count one (the count reads every open ticket of the day)."""
    rules = services.rules_from_config(client.application.config)
    config = client.application.config
    counted = []
    real = services._count_ahead
    monkeypatch.setattr(services, "_count_ahead", lambda *args: counted.append(args[2]) or real(*args))
    today = services.issue_walk_in(session, haircut.id, rules=rules, staff=None, phone="13800000009")
    later = services.book(session, haircut.id, tomorrow_at(9), rules=rules, request_key="later-day-ticket", phone="13800000010")
    assert later.day != today.day
    counted.clear()

    def page(ticket) -> str:
        token = services.ticket_token(ticket.booking_id, services.ticket_signer(config), config["CENTRE_CODE"])
        response = client.get(f"/booking/t/{token}")
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert later.ticket in page(later) and "前面还有" not in page(later)
    assert counted == []
    assert "您前面还有 0 人" in page(today)
    assert counted == [today.day]


def test_desk_calls_next_and_the_display_shows_the_ticket_without_phone_or_name(staff_client, session, haircut):
    from kiosk.booking.services import issue_walk_in

    walk_in = issue_walk_in(session, haircut.id, rules=services.rules_from_config(staff_client.application.config), staff=None, phone="13800000005")
    queue = staff_client.get("/staff/bookings/").get_data(as_text=True)
    assert walk_in.ticket in queue and "138****0005" in queue and "13800000005" not in queue
    token = csrf_token(staff_client, "/staff/bookings/")
    called = staff_client.post("/staff/bookings/call-next", data={"csrf_token": token, "service": haircut.id, "desk": "2"})
    assert called.status_code == 302
    display = staff_client.get("/staff/bookings/display/now", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f"请 理发 {walk_in.ticket} 到 2 号位" in display
    # Neither the number nor its masked form (a bare "138" can occur in a timestamp attribute).
    assert "13800000005" not in display and "138****0005" not in display
    page = staff_client.get("/staff/bookings/display").get_data(as_text=True)
    assert "chime.wav" in page and 'hx-trigger="every 1s"' in page


def test_staff_forms_create_a_service_with_its_schedule_and_closure(staff_client, session):
    token = csrf_token(staff_client, "/staff/bookings/services/new")
    fields = {
        "csrf_token": token,
        "name": "缝补",
        "prefix": "b",
        "category": "mending",
        "duration_minutes": "30",
        "lead_minutes": "30",
        "horizon_days": "14",
        "per_person_limit": "1",
        "cancel_minutes": "60",
        "noshow_limit": "3",
        "noshow_days": "90",
        "block_days": "30",
        "points_on_serve": "0",
        "active": "y",
    }
    created = staff_client.post("/staff/bookings/services/new", data=fields)
    assert created.status_code == 302
    service_id = int(created.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    bad = staff_client.post("/staff/bookings/services/new", data=fields | {"prefix": "BB", "name": "x"})
    assert bad.status_code == 422 and "请为票号指定一个字母" in bad.get_data(as_text=True)
    template = staff_client.post(
        f"/staff/bookings/services/{service_id}/templates",
        data={"csrf_token": token, "weekday": "2", "starts": "09:00", "ends": "11:30", "slot_minutes": "30", "capacity": "1", "provider_id": ""},
    )
    assert template.status_code == 302
    backwards = staff_client.post(
        f"/staff/bookings/services/{service_id}/templates",
        data={"csrf_token": token, "weekday": "2", "starts": "11:00", "ends": "09:00", "slot_minutes": "30", "capacity": "1", "provider_id": ""},
    )
    assert backwards.status_code == 422 and "结束时间必须晚于开始时间" in backwards.get_data(as_text=True)
    closure = staff_client.post("/staff/bookings/closures", data={"csrf_token": token, "day": "2027-01-01", "reason": "元旦"})
    assert closure.status_code == 302
    detail = staff_client.get(f"/staff/bookings/services/{service_id}").get_data(as_text=True)
    assert "周三 09:00–11:30" in detail


def test_exports_are_audited_and_mask_phones_for_staff(staff_client, session, haircut):
    book(staff_client, haircut, tomorrow_at(9))
    month = (datetime.now(ZONE).date() + timedelta(days=1)).strftime("%Y-%m")
    response = staff_client.get(f"/staff/bookings/export.csv?month={month}")
    text = response.get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["日期", "服务", "票号"] and rows[1][2] == "A001" and rows[1][5] == "138****0001"
    xlsx = staff_client.get(f"/staff/bookings/export.xlsx?month={month}")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "booking.export")) == 2
    assert "理发" in staff_client.get(f"/staff/bookings/month?month={month}").get_data(as_text=True)
    assert staff_client.get("/staff/bookings/hours").status_code == 200


def test_dashboard_card_shows_todays_figures(staff_client, haircut):
    html = staff_client.get("/staff/").get_data(as_text=True)
    assert "服务预约" in html and "今日取号" in html and "待服务" in html and "今日已服务" in html


def test_the_desks_figures_say_what_they_count(staff_client, session, haircut):
    """A walk-in is a ticket, not a booking; a called ticket is not waiting: the figures count
    both (services.today_figures), so their labels must not say 预约 / 等候."""
    rules = services.rules_from_config(staff_client.application.config)
    services.issue_walk_in(session, haircut.id, rules=rules, staff=None)
    services.issue_walk_in(session, haircut.id, rules=rules, staff=None)
    token = csrf_token(staff_client, "/staff/bookings/")
    assert staff_client.post("/staff/bookings/call-next", data={"csrf_token": token, "service": haircut.id, "desk": "1"}).status_code == 302
    page = staff_client.get("/staff/bookings/").get_data(as_text=True)
    figures = re.search(r"<p data-queue-figures>(.*?)\s*·\s*<a", page, re.S)
    assert figures and figures.group(1).strip() == "今日取号 2 · 待服务 2 · 已服务 0 · 爽约 0", figures


# ---- printing ----


def test_the_ticket_prints_in_gb18030_with_its_qr():
    printer = Dummy()
    printing.print_ticket(
        printer,
        centre="嘉荷社区党群服务中心",
        label="理发 A012",
        when="12月2日 周三 09:20",
        place="一楼",
        ahead="您前面还有 3 人",
        token="B1.XH-CY-CY1.7.sig",
        footer="请提前 5 分钟到场",
    )
    out = printer.output
    assert out.startswith(b"\x1b@")  # initialise
    assert printing.CHINESE_ON in out
    assert "理发 A012".encode("gb18030") in out and "12月2日 周三 09:20".encode("gb18030") in out
    assert "理发".encode() not in out
    assert b"\x1d(k" in out and b"B1.XH-CY-CY1.7.sig" in out  # native QR with the token
    assert out.endswith(b"\x1dV\x00") or b"\x1dV" in out[-4:]  # cut


def test_a_configured_printer_prints_and_a_broken_one_does_not_stop_the_booking(app, client, session, haircut, monkeypatch):
    printed = []
    monkeypatch.setitem(app.config, "RECEIPT_PRINTER", "dummy:")
    real_open = printing.open_printer

    def capture(spec):
        printer = real_open(spec)
        printed.append(printer)
        return printer

    monkeypatch.setattr(printing, "open_printer", capture)
    assert book(client, haircut, tomorrow_at(9)).status_code == 200
    assert "理发 A001".encode("gb18030") in printed[0].output
    monkeypatch.setattr(printing, "open_printer", lambda spec: (_ for _ in ()).throw(OSError("no paper")))
    assert book(client, haircut, tomorrow_at(9, 20), "13800000002").status_code == 200


def test_a_card_scanned_after_leaving_the_keypad_screen_does_not_book(client, session, haircut):
    """Safeguard: booking.views._forget_pending_slot (without it this books the slot the last
    visitor left on screen — checked by removing the hook)."""
    member = register_member(session, name="李国强", phone="13900000003", community="", age_band="60-69", consent=True, consent_version="t", actor=None)
    session.commit()
    client.get(f"/booking/{haircut.id}/slot/{tomorrow_at(9)}")
    scanned = post(client, "/scan", {"code": card_token(member, CARDS, "XH-CY-CY1")}, htmx=True, token_from="/")
    assert scanned.headers["HX-Location"] == "/points"
    assert counts(session)[0] == 0


def test_the_ticket_and_the_cancellation_end_the_visit_after_a_countdown(client, haircut):
    """A finished task ends the visit (DESIGN.md §8): the ticket and the cancellation show the
    shared countdown with 完成, leading home, where finish.js ends the server session."""
    location = book(client, haircut, tomorrow_at(10)).headers["HX-Location"]
    ticket = client.get(location).get_data(as_text=True)
    assert 'data-finish-seconds="15"' in ticket and 'data-finish-url="/"' in ticket and ">完成</button>" in ticket
    token = location.rsplit("/", 1)[1]
    done = post(client, f"/booking/t/{token}/cancel", token_from=location).get_data(as_text=True)
    assert 'data-finish-url="/"' in done and ">完成</button>" in done


# ---- bad input on the look-up, ticket and cancel paths writes nothing ----


@pytest.mark.parametrize(
    ("case", "status", "text"),
    [
        ("lookup-malformed-phone", 422, "手机号"),
        ("lookup-unknown-ticket", 404, "没有找到这张预约凭证"),
        ("cancel-foreign-centre", 403, "这是其他服务中心的预约凭证"),
        ("cancel-unknown-ticket", 404, "没有找到这张预约凭证"),
        ("cancel-tampered", 403, "预约凭证"),
        ("cancel-cancelled", 409, "这个预约已经取消了"),
        ("scan-foreign-centre", 403, "这是其他服务中心的预约凭证"),
    ],
)
def test_bad_ticket_input_gets_a_clear_refusal_and_writes_nothing(client, session, haircut, case, status, text):
    location = book(client, haircut, tomorrow_at(10)).headers["HX-Location"]
    token = location.rsplit("/", 1)[1]
    if case == "cancel-cancelled":
        assert post(client, f"/booking/t/{token}/cancel", token_from=location).status_code == 200
    before = counts(session)
    if case.startswith("lookup"):
        phone = "1380000" if case == "lookup-malformed-phone" else "13800000001"
        response = post(client, "/booking/lookup", {"letter": "A", "digits": "1" if "phone" in case else "9", "phone": phone}, htmx=True)
    elif case == "scan-foreign-centre":
        response = post(client, "/scan", {"code": services.ticket_token(1, TICKETS, "XH-LY-HL")}, htmx=True)
    else:
        bad = {
            "cancel-foreign-centre": services.ticket_token(1, TICKETS, "XH-LY-HL"),
            "cancel-unknown-ticket": services.ticket_token(999, TICKETS, "XH-CY-CY1"),
            "cancel-tampered": token[:-2] + ("xx" if not token.endswith("xx") else "yy"),
            "cancel-cancelled": token,
        }[case]
        response = post(client, f"/booking/t/{bad}/cancel", htmx=True, token_from=location)
    body = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500 and "Traceback" not in body, (response.status_code, body[:300])
    assert response.status_code == status and text in body, (response.status_code, body[:300])
    assert counts(session) == before


def test_a_cached_service_page_is_not_shown_once_staff_close_or_rename_the_service(client, session, haircut):
    """The day strip is answered from the availability cache without loading the service
    (bench/booking.py); a commit empties the cache first. Shown to fail without the safeguard:
    with kiosk.cache's after_commit bump and its data_version check both removed (the test's
    session commits on a connection of its own), the closed service's page stays 200."""
    page = f"/booking/{haircut.id}"
    first = client.get(page, headers={"HX-Request": "true", "HX-Target": "booking-day"})
    assert first.status_code == 200 and client.get(page).status_code == 200  # cached now
    services.save_service(session, haircut, name="剪发", prefix="A", category="haircut", place="嘉荷社区 一楼", actor=None)
    assert "剪发" in client.get(page).get_data(as_text=True)
    services.save_service(session, haircut, name="剪发", prefix="A", category="haircut", place="嘉荷社区 一楼", active=False, actor=None)
    assert client.get(page).status_code == 404
    assert client.get(page, headers={"HX-Request": "true", "HX-Target": "booking-day"}).status_code == 404


def test_the_kept_service_page_carries_each_visitors_own_csrf_token(app, client, haircut):
    """The whole service page is kept between visitors (kiosk.booking.views.service_page) with a
    stand-in for the CSRF token: every session gets its own token in it, never the one of the
    visitor whose request rendered it, and the same page as a fresh render otherwise. Shown to
    fail with the token filled in before the page is kept (the second visitor gets the first's)."""
    page = f"/booking/{haircut.id}"
    first = csrf_token(client, page)
    other = app.test_client()
    second = csrf_token(other, page)  # the kept page
    assert first != second
    assert csrf_token(client, page) == first and csrf_token(other, page) == second
    # Each token is the session's own: the kiosk books with it.
    data = {"service": str(haircut.id), "slot": tomorrow_at(9), "request_key": "kept-page-0001", "phone": "13800000001"}
    assert other.post("/booking/book", data=data, headers={"X-CSRFToken": second, "HX-Request": "true"}).status_code == 200


def test_the_ticket_url_from_its_prebuilt_prefix_is_the_signed_tokens_url(app):
    """The booking answer's HX-Location (views._ticket_url: a prefix built once, the tail signed
    per booking) is url_for of services.ticket_token exactly, for any booking id, a centre code
    that needs quoting, a new signing key and a script root; and it reads back. Fails if the
    MAC's head or its NUL differs from kiosk.signing's, or the prefix is kept across a key change."""
    from flask import url_for

    from kiosk.booking import views

    def check(script_root: str = "") -> None:
        with app.test_request_context("/", base_url="http://localhost" + script_root):
            config = app.config
            signer = services.ticket_signer(config)
            for booking_id in (1, 9, 10, 4711, 10**11 + 7):
                ticket = type("Ticket", (), {"booking_id": booking_id})()
                url = views._ticket_url(ticket)  # type: ignore[arg-type]
                token = services.ticket_token(booking_id, signer, config["CENTRE_CODE"])
                assert url == url_for("booking.ticket", token=token)
                assert url.startswith(script_root + "/booking/t/")
                assert services.read_ticket_token(token, signer, config["CENTRE_CODE"]) == booking_id

    check()
    check("/kiosk")
    app.config["CENTRE_CODE"] = "XH CY#1?"
    check()
    app.config["SIGNING_KEY"] = "another-signing-key"
    check()
