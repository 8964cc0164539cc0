"""Check-in races over real HTTP through waitress: many phones posting at once."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kiosk.checkin.services import poster_token, save_activity
from kiosk.members.services import register_member
from kiosk.signing import TokenSigner
from tests.helpers import TEST_SIGNING_KEY, Visitor, at_once

SIGNER = TokenSigner(TEST_SIGNING_KEY, purpose="checkin-code")
ZONE = ZoneInfo("Asia/Shanghai")


def seed(count_members: int, capacity: str = ""):
    seeded = {}

    def setup(session):
        now = datetime.now(ZONE).replace(second=0, microsecond=0)
        activity = save_activity(
            session,
            None,
            title="西红集市之“茶香品红韵”",
            category="community",
            description="",
            place="广场",
            starts_at=(now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
            ends_at=(now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            weekly=False,
            repeat_until="",
            capacity=capacity,
            points="2",
            policy="once",
            zone=ZONE,
            actor=None,
        )
        for i in range(count_members):
            register_member(
                session, name=f"会员{chr(0x4E00 + i)}", phone=f"135{i:08d}", community="", age_band="60-69", consent=True, consent_version="t", actor=None
            )
        seeded["path"] = f"/c/{poster_token(activity, SIGNER, 'XH-CY-CY1')}"

    return seeded, setup


def phone_form(visitor: Visitor, path: str) -> dict:
    html = visitor.get(path)
    return dict(re.findall(r'name="(csrf_token|pass|activity)" value="([^"]*)"', html))


def submit(visitor: Visitor, form: dict, phone: str):
    return visitor.post("/c/checkin", form | {"phone": phone})


def test_two_hundred_phones_at_once(serve_process):
    seeded, setup = seed(200)
    kiosk = serve_process(setup=setup, PHONE_CHECKIN_RATE_LIMIT="100000 per minute")
    phones = [Visitor(kiosk.url) for _ in range(200)]
    forms = [phone_form(p, seeded["path"]) for p in phones]
    results = at_once([lambda p=p, f=f, i=i: submit(p, f, f"135{i:08d}") for i, (p, f) in enumerate(zip(phones, forms))])
    assert [status for status, _ in results] == [200] * 200
    assert all("积分 +2" in body for _, body in results)
    assert (kiosk.count("check_in"), kiosk.count("points_entry"), kiosk.count("outbox_event WHERE type LIKE 'checkin.%'")) == (
        200,
        200,
        200,
    )  # members' registrations are events too


def test_one_phone_fifty_taps_at_once(serve_process):
    seeded, setup = seed(1)
    kiosk = serve_process(setup=setup, PHONE_CHECKIN_RATE_LIMIT="100000 per minute")
    phone = Visitor(kiosk.url)
    form = phone_form(phone, seeded["path"])
    results = at_once([lambda: submit(phone, form, "13500000000")] * 50)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 49
    assert sum("您已经签到过了" in body for _, body in results) == 49
    assert (kiosk.count("check_in"), kiosk.count("points_entry")) == (1, 1)


def test_capacity_holds_over_http(serve_process):
    seeded, setup = seed(0, capacity="25")
    kiosk = serve_process(setup=setup, PHONE_CHECKIN_RATE_LIMIT="100000 per minute")
    phones = [Visitor(kiosk.url) for _ in range(60)]
    forms = [phone_form(p, seeded["path"]) for p in phones]
    results = at_once([lambda p=p, f=f, i=i: submit(p, f, f"133{i:08d}") for i, (p, f) in enumerate(zip(phones, forms))])
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 25 + [409] * 35
    assert sum("名额已满" in body for _, body in results) == 35
    assert kiosk.count("check_in") == 25


def test_phone_checkins_are_rate_limited_per_address(serve_process):
    seeded, setup = seed(0)
    kiosk = serve_process(setup=setup, PHONE_CHECKIN_RATE_LIMIT="3 per minute")
    phone = Visitor(kiosk.url)
    form = phone_form(phone, seeded["path"])
    statuses = [submit(phone, form, f"1330000000{i}")[0] for i in range(4)]
    assert statuses == [200, 200, 200, 429]
