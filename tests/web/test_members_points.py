"""Members, cards and points through the Flask client, as staff and visitors use them."""

import csv
import io
import logging
import re

import pytest
import zxingcpp
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import func, select

from kiosk.db import write_transaction
from kiosk.members.models import Member
from kiosk.points.models import PointsEntry, PointsReason, Redemption, Reward
from kiosk.points.services import award_points, balance, save_reward
from tests.helpers import csrf_token, kiosk_post, login, post, scan, token_for

PHONE = "13812345678"


@pytest.fixture
def staff_client(client, make_staff):
    make_staff("li.staff", "correct-horse-1", "staff")
    login(client, "li.staff", "correct-horse-1")
    return client


@pytest.fixture
def admin_client(app, make_staff):
    make_staff("chen.admin", "correct-horse-2", "admin")
    client = app.test_client()
    login(client, "chen.admin", "correct-horse-2")
    return client


def register(client, **fields):
    data = {"name": "张建华", "phone": PHONE, "community": "翠苑一区", "age_band": "70-79", "consent": "y"} | fields
    data["csrf_token"] = csrf_token(client, "/staff/members/new")
    return client.post("/staff/members/new", data=data)


def members(session):
    session.rollback()
    return session.scalar(select(func.count()).select_from(Member))


def test_register_then_the_card_png_decodes_to_the_token_the_server_issued(staff_client, session):
    response = register(staff_client)
    assert response.status_code == 302
    member_id = int(re.search(r"/staff/members/(\d+)", response.headers["Location"]).group(1))
    detail = staff_client.get(f"/staff/members/{member_id}").get_data(as_text=True)
    assert "张建华" in detail and "138****5678" in detail and PHONE not in detail
    png = staff_client.get(f"/staff/members/{member_id}/card.png")
    assert png.headers["Content-Type"] == "image/png"
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))]
    assert decoded == [token_for(session, member_id)]
    svg = staff_client.get(f"/staff/members/{member_id}/card.svg")
    assert svg.headers["Content-Type"] == "image/svg+xml" and b"<svg" in svg.data
    card = staff_client.get(f"/staff/members/{member_id}/card").get_data(as_text=True)
    assert "张*华" in card and f"/staff/members/{member_id}/card.svg" in card


@pytest.mark.parametrize(
    "fields, status, message",
    [
        ({"phone": "1381234"}, 422, "手机号是 11 位数字，您输入了 7 位"),
        ({"phone": "12345678901"}, 422, "这不是有效的手机号"),
        ({"name": "张" * 31}, 422, "最多 30 个字"),
        ({"name": ""}, 422, "此项必填"),
        ({"consent": ""}, 422, "须先征得会员对隐私告知的同意"),
        ({"age_band": "200"}, 400, "不是有效的选项"),
    ],
)
def test_bad_registrations_get_clear_messages_and_write_nothing(staff_client, session, fields, status, message):
    response = register(staff_client, **fields)
    assert response.status_code == status
    if status == 422:
        assert message in response.get_data(as_text=True)
    assert members(session) == 0


def test_duplicate_phone_is_refused(staff_client, session):
    register(staff_client)
    response = register(staff_client, name="李娜", phone="138-1234-5678")
    assert response.status_code == 409 and "该手机号已登记为会员" in response.get_data(as_text=True)
    assert members(session) == 1


def test_phones_are_masked_for_staff_and_shown_to_admins(staff_client, admin_client, session):
    register(staff_client)
    assert "138****5678" in staff_client.get("/staff/members/").get_data(as_text=True)
    assert PHONE not in staff_client.get("/staff/members/").get_data(as_text=True)
    assert PHONE in admin_client.get("/staff/members/").get_data(as_text=True)
    assert "张建华" in staff_client.get("/staff/members/?q=5678").get_data(as_text=True)
    assert "张建华" not in staff_client.get("/staff/members/?q=嘉荷").get_data(as_text=True)


def test_exports_mask_phones_unless_admin(staff_client, admin_client, session):
    register(staff_client)
    staff_csv = staff_client.get("/staff/members/export.csv")
    text = staff_csv.data.decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads UTF-8 only with a BOM
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["会员号", "姓名", "手机号"] and rows[1][1:3] == ["张建华", "138****5678"]
    admin_rows = list(csv.reader(io.StringIO(admin_client.get("/staff/members/export.csv").data.decode("utf-8").lstrip("\ufeff"))))
    assert admin_rows[1][2] == PHONE
    sheet = load_workbook(io.BytesIO(staff_client.get("/staff/members/export.xlsx").data)).active
    assert [c.value for c in sheet[2]][1:3] == ["张建华", "138****5678"]


def test_kiosk_card_scan_shows_masked_name_and_balance_only_until_home(staff_client, client, session, app):
    register(staff_client)
    member_id = session.scalar(select(Member.id))
    award_points(session, member_id, 30, PointsReason.CHECKIN, reference="checkin:1")
    session.commit()
    visitor = app.test_client()
    before = visitor.get("/points").get_data(as_text=True)
    assert "请扫描会员卡" in before and "data-balance" not in before
    response = scan(visitor, token_for(session, member_id))
    assert response.status_code == 200 and response.headers["HX-Location"] == "/points"
    page = visitor.get("/points").get_data(as_text=True)
    assert "您好，张*华" in page and re.search(r"data-balance>30<", page)
    assert "张建华" not in page and PHONE not in page and "138****5678" not in page
    visitor.get("/")  # 返回首页 ends the task
    assert "data-balance" not in visitor.get("/points").get_data(as_text=True)


@pytest.mark.parametrize(
    "change, message",
    [
        ("tamper", "此会员卡无效"),
        ("foreign", "这是其他中心的会员卡"),
        ("revoked", "此会员卡已补发新卡"),
        ("inactive", "该会员已停用"),
        ("garbled", "无法读取此会员卡"),
    ],
)
def test_refused_cards_each_have_their_own_message(staff_client, session, app, change, message):
    register(staff_client)
    member_id = session.scalar(select(Member.id))
    token = token_for(session, member_id)
    if change == "tamper":
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
    elif change == "foreign":
        token = token.replace("XH-CY-CY1", "XH-GD-JH")
    elif change == "garbled":
        token = "M1.XH-CY-CY1.x"
    else:
        action = "reissue" if change == "revoked" else "active"
        staff_client.post(f"/staff/members/{member_id}/{action}", data={"csrf_token": csrf_token(staff_client, "/staff/"), "active": "0"})
    visitor = app.test_client()
    response = scan(visitor, token)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    with visitor.session_transaction() as s:
        assert "member" not in s


def test_redeem_at_the_kiosk_changes_balance_and_stock_by_exactly_the_cost_once(staff_client, session, app):
    register(staff_client)
    member_id = session.scalar(select(Member.id))
    award_points(session, member_id, 30, PointsReason.CHECKIN, reference="checkin:1")
    session.commit()  # award_points joins its caller's unit of work: commit it before the next one
    reward = save_reward(session, None, name="环保袋", description="", cost=12, stock=3, actor=None)
    visitor = app.test_client()
    scan(visitor, token_for(session, member_id))
    assert "环保袋" in visitor.get("/points").get_data(as_text=True)
    confirm = visitor.get(f"/points/rewards/{reward.id}").get_data(as_text=True)
    assert "确定用 12 积分兑换 环保袋 吗？" in confirm
    request_key = re.search(r'name="request_key" value="(\w+)"', confirm).group(1)
    data = {"reward_id": reward.id, "request_key": request_key}
    first = kiosk_post(visitor, "/points/redeem", data)
    again = kiosk_post(visitor, "/points/redeem", data)  # a double tap
    code = re.search(r"data-pickup-code>(\d{3}) (\d{3})<", first.get_data(as_text=True))
    assert first.status_code == 200 and code
    assert re.search(r"data-pickup-code>(\d{3}) (\d{3})<", again.get_data(as_text=True)).groups() == code.groups()
    session.rollback()
    assert balance(session, member_id) == 18
    assert session.get(Reward, reward.id).stock == 2
    assert session.scalar(select(func.count()).select_from(Redemption)) == 1


@pytest.mark.parametrize("case, status, message", [("unknown", 404, "没有这个兑换品"), ("poor", 409, "积分不足"), ("bad_key", 400, "请返回后重试")])
def test_kiosk_redemption_refusals(staff_client, session, app, case, status, message):
    register(staff_client)
    member_id = session.scalar(select(Member.id))
    reward = save_reward(session, None, name="雨伞", description="", cost=50, stock=1, actor=None)
    session.commit()
    visitor = app.test_client()
    scan(visitor, token_for(session, member_id))
    data = {"reward_id": 999 if case == "unknown" else reward.id, "request_key": "x" if case == "bad_key" else "k" * 32}
    response = kiosk_post(visitor, "/points/redeem", data)
    assert response.status_code == status and message in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Redemption)) == 0


def test_redeem_without_a_card_is_refused(client):
    response = post(client, "/points/redeem", {"reward_id": 1, "request_key": "k" * 32})
    assert response.status_code == 403 and "请先扫描会员卡" in response.get_data(as_text=True)
    assert client.get("/points/rewards/1").status_code == 403


@pytest.mark.parametrize(
    "delta, note, message",
    [("-5", "扣分", "积分余额不能小于零"), ("1.5", "x", "请输入整数"), ("abc", "x", "请输入整数"), ("0", "x", "非零整数"), ("10", "", "请填写更正原因")],
)
def test_bad_points_corrections(staff_client, session, delta, note, message):
    register(staff_client)
    member_id = session.scalar(select(Member.id))
    token = csrf_token(staff_client, f"/staff/members/{member_id}")
    response = staff_client.post(f"/staff/members/{member_id}/points", data={"csrf_token": token, "delta": delta, "note": note})
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(PointsEntry)) == 0


def test_staff_rewards_and_desk_redemption_hand_over_and_cancel(staff_client, session):
    register(staff_client)
    member_id = session.scalar(select(Member.id))
    award_points(session, member_id, 100, PointsReason.VOLUNTEER, reference="volunteer:1")
    session.commit()
    token = csrf_token(staff_client, "/staff/rewards/")
    bad = staff_client.post("/staff/rewards/", data={"csrf_token": token, "name": "雨伞", "cost": "-3", "stock": "2", "active": "y"})
    assert bad.status_code == 422 and "所需积分须在 1 到" in bad.get_data(as_text=True)
    ok = staff_client.post("/staff/rewards/", data={"csrf_token": token, "name": "雨伞", "cost": "40", "stock": "2", "active": "y"})
    assert ok.status_code == 302
    session.rollback()  # end this test's read snapshot to see the request's commit
    reward_id = session.scalar(select(Reward.id))
    detail = staff_client.get(f"/staff/members/{member_id}").get_data(as_text=True)
    request_key = re.search(r'name="request_key" type="hidden" value="(\w+)"', detail).group(1)
    for _ in range(2):  # the same form submitted twice
        staff_client.post(f"/staff/members/{member_id}/redeem", data={"csrf_token": token, "reward_id": str(reward_id), "request_key": request_key})
    session.rollback()
    assert balance(session, member_id) == 60
    redemption = session.scalar(select(Redemption))
    waiting = staff_client.get(f"/staff/rewards/redemptions?code={redemption.pickup_code}").get_data(as_text=True)
    assert redemption.pickup_code in waiting and "张建华" in waiting
    staff_client.post(f"/staff/rewards/redemptions/{redemption.id}/cancel", data={"csrf_token": token, "note": "不要了"})
    session.rollback()
    assert balance(session, member_id) == 100 and session.get(Reward, reward_id).stock == 2
    again = staff_client.post(f"/staff/rewards/redemptions/{redemption.id}/hand-over", data={"csrf_token": token}, follow_redirects=True)
    assert "这条兑换已领取或已取消" in again.get_data(as_text=True)


def test_phone_numbers_never_reach_the_log_or_a_visitor_page(staff_client, admin_client, session, app, caplog, open_activity):
    """Every flow that touches a phone, with every logger at DEBUG, SQL echo included."""
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)
        try:
            register(staff_client)
            register(staff_client, name="李娜", phone=PHONE)  # duplicate: an IntegrityError path
            member_id = session.scalar(select(Member.id))
            admin_client.get("/staff/members/export.csv")
            admin_client.get(f"/staff/members/{member_id}")
            visitor = app.test_client()
            screen = f"/checkin/{open_activity.id}"
            kiosk_phone = post(visitor, f"{screen}/phone", {"phone": PHONE}, htmx=True, token_from=screen)
            assert kiosk_phone.status_code == 200
            scan(visitor, token_for(session, member_id))
            pages = [kiosk_phone.get_data(as_text=True)] + [visitor.get(p).get_data(as_text=True) for p in ("/", "/points", "/checkin", screen)]
            logging.getLogger("kiosk.test").warning("visitor typed %s", PHONE)
        finally:
            logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert PHONE not in caplog.text
    assert "138****5678" in caplog.text
    for page in pages:
        assert PHONE not in page


def test_reward_picture_upload_is_checked_and_served_small(staff_client, session):
    from PIL import Image

    token = csrf_token(staff_client, "/staff/rewards/")
    fake = staff_client.post(
        "/staff/rewards/",
        data={"csrf_token": token, "name": "雨伞", "cost": "40", "stock": "2", "active": "y", "picture": (io.BytesIO(b"%PDF-1.4 not a picture"), "x.png")},
        content_type="multipart/form-data",
    )
    assert fake.status_code == 422 and "请上传 JPEG 或 PNG 图片" in fake.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Reward)) == 0
    photo = io.BytesIO()
    Image.new("RGB", (1600, 1200), "navy").save(photo, format="JPEG")
    photo.seek(0)
    ok = staff_client.post(
        "/staff/rewards/",
        data={"csrf_token": token, "name": "雨伞", "cost": "40", "stock": "2", "active": "y", "picture": (photo, "umbrella.jpg")},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 302
    session.rollback()  # end this test's read snapshot to see the request's commit
    reward_id = session.scalar(select(Reward.id))
    served = staff_client.get(f"/rewards/{reward_id}/picture")
    assert served.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(served.data)).size == (480, 360)


def test_the_ledger_and_the_audit_log_say_in_words_what_a_kiosk_redemption_was(staff_client, admin_client, session, app):
    register(staff_client)
    member_id = session.scalar(select(Member.id))
    with write_transaction(session):
        award_points(session, member_id, 30, PointsReason.CORRECTION)
    reward = save_reward(session, None, name="环保袋", description="", cost=12, stock=3, actor=None)
    visitor = app.test_client()
    scan(visitor, token_for(session, member_id))
    kiosk_post(visitor, "/points/redeem", {"reward_id": reward.id, "request_key": "k" * 32})
    session.rollback()  # end this test's read snapshot (WAL) to see the request's commit
    code = session.scalar(select(Redemption.pickup_code))
    ledger = staff_client.get(f"/staff/members/{member_id}").get_data(as_text=True)
    assert "redemption:" not in ledger
    assert f'<a href="/staff/rewards/redemptions?code={code}">兑换「环保袋」（取货码 {code}）</a>' in ledger
    audit = admin_client.get("/staff/audit").get_data(as_text=True)
    row = re.search(r"<tr>(?:(?!</tr>).)*points\.redeem(?:(?!</tr>).)*</tr>", audit, re.S).group(0)
    assert "<td>自助终端</td>" in row and "积分兑换" in row and f'href="/staff/members/{member_id}"' in row
    only_redeem = admin_client.get("/staff/audit?action=points.redeem").get_data(as_text=True)
    assert "<code>points.redeem</code>" in only_redeem and "<code>member.register</code>" not in only_redeem


def test_card_downloads_name_the_member_masked_and_the_centre_and_still_scan(staff_client, session, app):
    register(staff_client)
    member_id = session.scalar(select(Member.id))
    png = staff_client.get(f"/staff/members/{member_id}/card.png?download=1")
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))] == [token_for(session, member_id)]
    svg = staff_client.get(f"/staff/members/{member_id}/card.svg?download=1").get_data(as_text=True)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert texts[0] == "会员卡 · 张*华" and texts[-1] == app.config["CENTRE_NAME"] and "张建华" not in svg
