"""Check-in through the Flask client: staff pages, the phone page, the kiosk screen."""

import csv
import io
import re
from datetime import datetime, timedelta

import pypdfium2
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import func, select

from kiosk.checkin.models import Activity, CheckIn
from kiosk.checkin.services import poster_token, rotating_token, rotation_step
from kiosk.members.services import card_token
from kiosk.points.models import PointsEntry
from kiosk.signing import TokenSigner
from kiosk.sync.models import OutboxEvent
from tests.helpers import TEST_SIGNING_KEY, ZONE, activity_id, create_activity, csrf_token, login, now_local, post, register, visible_text

CODE_SIGNER = TokenSigner(TEST_SIGNING_KEY, purpose="checkin-code")
CARD_SIGNER = TokenSigner(TEST_SIGNING_KEY, purpose="member-card")


@pytest.fixture
def staff_client(client, make_staff):
    make_staff("li.staff", "correct-horse-1", "staff")
    login(client, "li.staff", "correct-horse-1")
    return client


def counts(session):
    """(check-ins, points entries, check-in events); registering a member writes its own event."""
    session.rollback()
    events = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type.like("checkin.%"))
    return (*(session.scalar(select(func.count()).select_from(m)) for m in (CheckIn, PointsEntry)), session.scalar(events))


def open_phone_page(client, url_path):
    page = client.get(url_path)
    html = page.get_data(as_text=True)
    return page, html


def phone_submit(client, html, phone):
    fields = dict(re.findall(r'name="(csrf_token|pass|activity)" value="([^"]*)"', html))
    return client.post("/c/checkin", data=fields | {"phone": phone})


def test_staff_creates_an_activity_and_a_phone_checks_in_from_the_poster(staff_client, app, session):
    created = create_activity(staff_client)
    assert created.status_code == 302
    aid = activity_id(created)
    detail = staff_client.get(f"/staff/activities/{aid}").get_data(as_text=True)
    poster_url = re.search(r"<code>(http://localhost/c/[^<]+)</code>", detail).group(1)
    png = staff_client.get(f"/staff/activities/{aid}/poster.png")
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))] == [poster_url]

    phone = app.test_client()
    page, html = open_phone_page(phone, poster_url.removeprefix("http://localhost"))
    assert page.status_code == 200 and "书法课" in html and 'type="tel"' in html
    register(session)
    session.commit()
    done = phone_submit(phone, html, "13812345678")
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and "签到成功：张*华，书法课。积分 +5" in visible_text(body)
    assert "张建华" not in body and "13812345678" not in body
    assert counts(session) == (1, 1, 1)
    again = phone_submit(phone, html, "13812345678")
    assert again.status_code == 409 and "您已经签到过了" in again.get_data(as_text=True)
    assert counts(session) == (1, 1, 1)
    live = staff_client.get(f"/checkin/{aid}/count").get_data(as_text=True)
    assert re.search(r"data-live-count>1<", live)


def test_the_poster_pdf_carries_the_same_qr(staff_client):
    aid = activity_id(create_activity(staff_client))
    pdf = staff_client.get(f"/staff/activities/{aid}/poster.pdf")
    assert pdf.headers["Content-Type"] == "application/pdf" and pdf.data.startswith(b"%PDF")
    page = pypdfium2.PdfDocument(pdf.data)[0]
    image = page.render(scale=2).to_pil()
    decoded = [r.text for r in zxingcpp.read_barcodes(image)]
    assert len(decoded) == 1 and re.fullmatch(r"http://localhost/c/C1\.XH-CY-CY1\.\d+\.P\.[\w-]{22}", decoded[0])
    svg = staff_client.get(f"/staff/activities/{aid}/poster.svg")
    assert svg.headers["Content-Type"] == "image/svg+xml"
    assert "手机扫码签到" in staff_client.get(f"/staff/activities/{aid}/poster").get_data(as_text=True)


def test_a_photo_of_the_rotating_qr_sent_home_stops_working(staff_client, app, session):
    aid = activity_id(create_activity(staff_client))
    rotating = staff_client.get(f"/staff/activities/{aid}/rotating").get_data(as_text=True)
    assert 'hx-trigger="every 10s"' in rotating and "data:image/svg+xml;base64," in rotating
    activity = session.get(Activity, aid)
    current = rotation_step(datetime.now(ZONE), 20)
    phone = app.test_client()
    page, html = open_phone_page(phone, f"/c/{rotating_token(activity, CODE_SIGNER, 'XH-CY-CY1', current)}")
    assert page.status_code == 200
    old, old_html = open_phone_page(phone, f"/c/{rotating_token(activity, CODE_SIGNER, 'XH-CY-CY1', current - 3)}")
    assert old.status_code == 410 and "签到码已更新" in old_html
    # The phone that opened a fresh code may take its time to type: the pass carries it.
    assert phone_submit(phone, html, "13900001111").status_code == 200
    assert counts(session)[0] == 1


@pytest.mark.parametrize(
    "make_path, status, message",
    [
        (lambda a: f"/c/{poster_token(a, CODE_SIGNER, 'XH-GD-JH')}", 403, "这是其他中心的签到码"),
        (lambda a: f"/c/{poster_token(a, CODE_SIGNER, 'XH-CY-CY1')[:-2]}xx", 403, "此签到码无效"),
        (lambda a: "/c/hello", 400, "这不是本中心的签到码"),
        (lambda a: "/c/" + "C1." * 300, 400, "这不是本中心的签到码"),
    ],
)
def test_bad_codes_get_a_clear_page_and_write_nothing(staff_client, app, session, make_path, status, message):
    aid = activity_id(create_activity(staff_client))
    response = app.test_client().get(make_path(session.get(Activity, aid)))
    # Less the zero-width spaces marking where a sentence may break (docs/ux.md).
    assert response.status_code == status and message in response.get_data(as_text=True).replace("\u200b", "")
    assert counts(session) == (0, 0, 0)


def test_windows_on_the_phone_page(staff_client, app, session):
    later = now_local() + timedelta(days=1)
    aid = activity_id(
        create_activity(staff_client, starts_at=later.strftime("%Y-%m-%dT%H:%M"), ends_at=(later + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    )
    page = app.test_client().get(f"/c/{poster_token(session.get(Activity, aid), CODE_SIGNER, 'XH-CY-CY1')}")
    assert page.status_code == 409 and "签到将于" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "tamper, status, message",
    [("pass", 403, "签到页面无效"), ("activity", 403, "此签到页面属于其他活动"), ("phone", 422, "手机号是 11 位数字")],
)
def test_phone_form_tampering(staff_client, app, session, tamper, status, message):
    aid = activity_id(create_activity(staff_client))
    other = activity_id(create_activity(staff_client, title="舞蹈课"))
    phone = app.test_client()
    _, html = open_phone_page(phone, f"/c/{poster_token(session.get(Activity, aid), CODE_SIGNER, 'XH-CY-CY1')}")
    fields = dict(re.findall(r'name="(csrf_token|pass|activity)" value="([^"]*)"', html)) | {"phone": "13900001111"}
    if tamper == "pass":
        fields["pass"] = fields["pass"][:-1] + ("A" if fields["pass"][-1] != "A" else "B")
    elif tamper == "activity":
        fields["activity"] = str(other)
    else:
        fields["phone"] = "1390000"
    response = phone.post("/c/checkin", data=fields)
    # Less the zero-width spaces marking where a sentence may break (docs/ux.md).
    assert response.status_code == status and message in response.get_data(as_text=True).replace("\u200b", "")
    assert counts(session) == (0, 0, 0)


def test_kiosk_screen_phone_keypad_and_card_scan(staff_client, app, session):
    aid = activity_id(create_activity(staff_client))
    member = register(session)
    session.commit()
    kiosk = app.test_client()
    listing = kiosk.get("/checkin").get_data(as_text=True)
    assert "书法课" in listing and f"/checkin/{aid}" in listing
    screen = kiosk.get(f"/checkin/{aid}").get_data(as_text=True)
    assert "会员请将会员卡放到扫码口下" in screen
    guest = post(kiosk, f"/checkin/{aid}/phone", {"phone": "13900001111"}, htmx=True, token_from=f"/checkin/{aid}")
    # The activity's name is one unbreakable piece (templates/_macros/ui.html with_name).
    assert guest.status_code == 200 and '签到成功：139****1111，<span class="name-text">书法课</span>。' in guest.get_data(as_text=True)
    card = card_token(member, CARD_SIGNER, "XH-CY-CY1")
    scanned = post(kiosk, "/scan", {"code": card}, htmx=True, token_from=f"/checkin/{aid}")
    assert scanned.status_code == 200 and "签到成功：张*华，书法课。积分 +5" in scanned.get_data(as_text=True)
    twice = post(kiosk, "/scan", {"code": card}, htmx=True, token_from=f"/checkin/{aid}")
    assert twice.status_code == 409 and "您已经签到过了" in twice.get_data(as_text=True)
    assert counts(session) == (2, 1, 2)
    # From home the same card opens 我的积分 instead of checking in again.
    home = post(kiosk, "/scan", {"code": card}, htmx=True, token_from="/")
    assert home.headers.get("HX-Location") == "/points"


def test_a_checkin_code_held_to_the_kiosk_opens_its_screen(staff_client, app, session):
    aid = activity_id(create_activity(staff_client))
    kiosk = app.test_client()
    response = post(kiosk, "/scan", {"code": poster_token(session.get(Activity, aid), CODE_SIGNER, "XH-CY-CY1")}, htmx=True)
    assert response.status_code == 200 and response.headers["HX-Location"] == f"/checkin/{aid}"


def test_lock_sends_the_kiosk_to_the_activity_and_a_card_checks_in_from_anywhere(staff_client, app, session):
    aid = activity_id(create_activity(staff_client))
    member = register(session)
    session.commit()
    token = csrf_token(staff_client, f"/staff/activities/{aid}")
    staff_client.post(f"/staff/activities/{aid}/lock", data={"csrf_token": token, "lock": "1"})
    kiosk = app.test_client()
    assert kiosk.get("/checkin").headers["Location"] == f"/checkin/{aid}"
    scanned = post(kiosk, "/scan", {"code": card_token(member, CARD_SIGNER, "XH-CY-CY1")}, htmx=True, token_from="/")
    assert "签到成功" in scanned.get_data(as_text=True)
    staff_client.post(f"/staff/activities/{aid}/lock", data={"csrf_token": token, "lock": "0"})
    assert kiosk.get("/checkin").status_code == 200


def test_manual_checkin_undo_and_attendance_export(staff_client, session):
    aid = activity_id(create_activity(staff_client))
    member = register(session)
    session.commit()
    token = csrf_token(staff_client, f"/staff/activities/{aid}")
    no_reason = staff_client.post(f"/staff/activities/{aid}/checkin", data={"csrf_token": token, "person": str(member.id), "reason": ""})
    assert no_reason.status_code == 422 and "请填写代签到的原因" in no_reason.get_data(as_text=True)
    unknown = staff_client.post(f"/staff/activities/{aid}/checkin", data={"csrf_token": token, "person": "999", "reason": "没带手机"})
    assert unknown.status_code == 422 and "没有这个会员号" in unknown.get_data(as_text=True)
    ok = staff_client.post(f"/staff/activities/{aid}/checkin", data={"csrf_token": token, "person": str(member.id), "reason": "老人没带手机"})
    assert ok.status_code == 302
    staff_client.post(f"/staff/activities/{aid}/checkin", data={"csrf_token": token, "person": "13900002222", "reason": "小朋友"})
    rows = list(csv.reader(io.StringIO(staff_client.get(f"/staff/activities/{aid}/attendance.csv").data.decode("utf-8").lstrip("\ufeff"))))
    assert [r[2:4] for r in rows[1:]] == [["非会员", "139****2222"], ["张建华", "138****5678"]]
    member_id = member.id
    session.rollback()  # end this test's read snapshot to see the requests' commits
    checkin_id = session.scalar(select(CheckIn.id).where(CheckIn.member_id == member_id))
    staff_client.post(f"/staff/activities/checkins/{checkin_id}/undo", data={"csrf_token": token, "reason": "重复登记"})
    session.rollback()
    assert session.get(CheckIn, checkin_id).status == "undone"
    assert session.scalar(select(func.sum(PointsEntry.delta))) == 0
    audit = staff_client.get("/staff/audit")
    assert audit.status_code == 403  # staff, not admin


def test_statistics_page_shows_the_chart_and_figures(staff_client, app, session):
    aid = activity_id(create_activity(staff_client, category="lecture"))
    phone = app.test_client()
    _, html = open_phone_page(phone, f"/c/{poster_token(session.get(Activity, aid), CODE_SIGNER, 'XH-CY-CY1')}")
    phone_submit(phone, html, "13900001111")
    stats = staff_client.get("/staff/activities/stats").get_data(as_text=True)
    assert "<svg" in stats and "讲座" in stats and re.search(r"data-attendances>1<", stats)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"title": ""}, "此项必填"),
        ({"ends_at": "2020-01-01T00:00"}, "结束时间必须晚于开始时间"),
        ({"capacity": "-3"}, "请输入 1 到 10000 之间的数字"),  # issue 7: a negative says the range, not 请输入整数
        ({"points": "abc"}, "请输入整数"),
    ],
)
def test_bad_activity_forms(staff_client, session, fields, message):
    response = create_activity(staff_client, **fields)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Activity)) == 0


def test_staff_screens_and_exports_show_labels_not_codes(staff_client, session):
    aid = activity_id(create_activity(staff_client))
    member = register(session)
    session.commit()
    token = csrf_token(staff_client, f"/staff/activities/{aid}")
    staff_client.post(f"/staff/activities/{aid}/checkin", data={"csrf_token": token, "person": str(member.id), "reason": "没带手机"})
    detail = staff_client.get(f"/staff/activities/{aid}").get_data(as_text=True)
    assert "工作人员代签" in detail and ">staff<" not in detail
    rows = list(csv.reader(io.StringIO(staff_client.get(f"/staff/activities/{aid}/attendance.csv").data.decode("utf-8").lstrip("\ufeff"))))
    assert rows[1][4] == "工作人员代签" and rows[1][6] == "有效"
    ledger = staff_client.get(f"/staff/members/{member.id}").get_data(as_text=True)
    assert "活动签到" in ledger and "<code>checkin</code>" not in ledger


def test_the_activity_form_shows_every_error_at_once_each_under_its_field(staff_client):
    new_form = staff_client.get("/staff/activities/new").get_data(as_text=True)
    # No category is chosen for the staff member: the empty "please choose" option is selected.
    assert re.search(r'<option selected value="">', new_form) or re.search(r'<option value="" selected>', new_form)
    response = create_activity(staff_client, title="", category="", points="\u22125")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for field in ("title", "category", "points"):
        assert f'id="{field}-error"' in html and f'aria-describedby="{field}-error"' in html, field
    points_error = re.search(r'id="points-error"[^>]*>([^<]*)<', html).group(1)
    assert "整数" not in points_error and "0" in points_error
    assert 'id="place-error"' not in html


def test_poster_downloads_name_the_activity_and_the_centre_and_still_scan(staff_client, app):
    aid = activity_id(create_activity(staff_client))
    detail = staff_client.get(f"/staff/activities/{aid}").get_data(as_text=True)
    poster_url = re.search(r"<code>(http://localhost/c/[^<]+)</code>", detail).group(1)
    png = staff_client.get(f"/staff/activities/{aid}/poster.png?download=1")
    image = Image.open(io.BytesIO(png.data))
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [poster_url]
    bare = Image.open(io.BytesIO(staff_client.get(f"/staff/activities/{aid}/poster.png").data))
    assert image.height > bare.height + 100
    svg = staff_client.get(f"/staff/activities/{aid}/poster.svg?download=1").get_data(as_text=True)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert texts[0] == "书法课" and "二楼活动室" in texts and texts[-1] == app.config["CENTRE_NAME"]


def test_a_phone_check_in_shows_the_new_balance_and_leaves_the_session_cookie_alone(staff_client, app, session):
    """The confirmation shows the member's balance read in the check-in's own unit of work, and
    a visitor's page does not touch Flask-Login: its session protection used to mark a phone's
    session ``_fresh`` on its first check-in, sending a new session cookie with every one."""
    register(session, phone="13900003333")
    session.commit()
    aid = activity_id(create_activity(staff_client, points="4"))
    phone = app.test_client()
    _, html = open_phone_page(phone, f"/c/{poster_token(session.get(Activity, aid), CODE_SIGNER, 'XH-CY-CY1')}")
    response = phone_submit(phone, html, "13900003333")
    assert response.status_code == 200
    assert "您现在共有 4 积分" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
