"""Crash safety (issue 14): `kiosk serve` SIGKILLed at 20 random moments under a mixed load of
keypad check-ins (guests and members), bookings, card redemptions, desk loans and points
corrections, started again each time with the same command and nothing else.

After every restart: ``PRAGMA integrity_check`` is ok; every request that was answered with a
success is in the database; nothing is half-written (a check-in without its outbox event or a
member's without its points entry, a booking without its ticket or event, a redemption without
its points entry or event, a loan or a correction without its event, an event without what it
tells of); the outbox sequence has no gap. Requests cut off by the kill have no known answer and
may or may not be there, but whole or not at all.

`kiosk sync` killed mid-push and the hub killed mid-ingest are tests/sync/test_sync_faults.py
(test_killing_the_kiosk_mid_sync_… and test_killing_the_hub_mid_push_…: exactly once after).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.booking import services as booking
from kiosk.db import write_transaction
from kiosk.extensions import db
from kiosk.members.services import card_token, register_member
from kiosk.points.models import PointsReason
from kiosk.points.services import award_points, save_reward
from kiosk.signing import TokenSigner
from kiosk.staff.services import create_staff_user
from tests.hardening.kiosk_process import UNKNOWN, Browser, KioskProcess, seeded_instance
from tests.helpers import TEST_DEVICE_SECRET, TEST_SIGNING_KEY, copy_database, open_activity_now

KILLS = 20
ZONE = ZoneInfo("Asia/Shanghai")
NO_LIMIT = "100000 per minute"
LIMITS = {"KIOSK_CHECKIN_RATE_LIMIT": NO_LIMIT, "NUMBER_CHECKIN_RATE_LIMIT": NO_LIMIT, "PHONE_CHECKIN_RATE_LIMIT": NO_LIMIT, "CARD_NUMBER_RATE_LIMIT": NO_LIMIT}
ADMIN, PASSWORD = "crash.admin", "crash-admin-password"


def _seed(session) -> dict:
    """An activity open now (5 points), 60 members with 1000 points and cards, a reward with
    plenty of stock, a service bookable tomorrow all day, the demo catalogue's copies, an admin."""
    from kiosk.catalogue.demo import load as load_catalogue

    load_catalogue(session, ZONE)
    seeded: dict = {"activity": open_activity_now(session, title="断电演练", points="5").id}
    signer = TokenSigner(TEST_SIGNING_KEY, purpose="member-card")
    seeded["members"] = []
    for i in range(60):
        member = register_member(
            session, name=f"会员{chr(0x4E00 + i)}", phone=f"1390000{i:04d}", community="", age_band="60-69", consent=True, consent_version="t", actor=None
        )
        with write_transaction(session):
            award_points(session, member.id, 1000, PointsReason.CORRECTION, note="seed")
        seeded["members"].append((member.id, member.phone, card_token(member, signer, "XH-CY-CY1")))
    seeded["reward"] = save_reward(session, None, name="环保袋", description="", cost=1, stock=100000, actor=None).id
    service = booking.save_service(session, None, name="理发", prefix="A", category="haircut", actor=None)
    for weekday in range(7):
        booking.save_template(session, service, weekday=weekday, starts="08:00", ends="20:00", slot_minutes=30, capacity="100", actor=None)
    seeded["service"] = service.id
    create_staff_user(session, ADMIN, PASSWORD, "admin", display_name="演练管理员")
    session.commit()
    seeded["barcodes"] = [b for (b,) in session.execute(db.text("SELECT barcode FROM book_copy WHERE status = 'on_shelf' ORDER BY id")).all()]
    return seeded


class Load:
    """The mixed stream; each worker records what was answered with a success."""

    def __init__(self, kiosk: KioskProcess, seeded: dict, rng: random.Random):
        self.kiosk = kiosk
        self.seeded = seeded
        self.rng = rng
        self.stop = threading.Event()
        self.succeeded: dict[str, list] = defaultdict(list)
        self.answers: dict[str, list[int]] = defaultdict(list)
        self.lock = threading.Lock()
        self.guest = 0
        self.member_phones = [phone for _, phone, _ in seeded["members"]]
        self.barcodes = list(seeded["barcodes"])
        self.staff = Browser(kiosk.url)
        status, _ = self.staff.request("/staff/login")
        assert status == 200
        assert self.staff.request("/staff/login", {"username": ADMIN, "password": PASSWORD})[0] == 302
        self.staff.request("/staff/")

    def record(self, kind: str, status: int, ok: bool, key) -> None:
        with self.lock:
            self.answers[kind].append(status)
            if ok:
                self.succeeded[kind].append(key)

    def next_person(self) -> str:
        with self.lock:
            if self.member_phones and self.guest % 3 == 0:
                self.guest += 1
                return self.member_phones.pop()
            self.guest += 1
            return f"136{self.guest:08d}"

    def checkins(self) -> None:
        kiosk = Browser(self.kiosk.url, TEST_DEVICE_SECRET)
        path = f"/checkin/{self.seeded['activity']}"
        kiosk.request(path)
        while not self.stop.is_set():
            phone = self.next_person()
            status, _ = kiosk.request(path + "/phone", {"phone": phone}, htmx=True)
            self.record("checkin", status, status == 200, phone)
            if status == UNKNOWN:
                return

    def bookings(self) -> None:
        kiosk = Browser(self.kiosk.url, TEST_DEVICE_SECRET)
        kiosk.request("/booking")
        tomorrow = (datetime.now(ZONE).date() + timedelta(days=1)).strftime("%Y%m%d")
        while not self.stop.is_set():
            with self.lock:
                self.guest += 1
                phone = f"137{self.guest:08d}"
            key = booking.new_request_key()
            slot = tomorrow + self.rng.choice(["0800", "0930", "1100", "1400", "1630", "1900"])
            status, _ = kiosk.request("/booking/book", {"service": self.seeded["service"], "slot": slot, "request_key": key, "phone": phone}, htmx=True)
            self.record("booking", status, status == 200, key)
            if status == UNKNOWN:
                return

    def redemptions(self) -> None:
        import re

        while not self.stop.is_set():
            kiosk = Browser(self.kiosk.url, TEST_DEVICE_SECRET)
            _member_id, _phone, card = self.rng.choice(self.seeded["members"])
            if kiosk.request("/points")[0] != 200 or kiosk.request("/scan", {"code": card}, htmx=True)[0] != 200:
                return
            status, page = kiosk.request(f"/points/rewards/{self.seeded['reward']}")
            match = re.search(r'name="request_key" value="(\w+)"', page)
            if status != 200 or not match:
                return
            status, _ = kiosk.request("/points/redeem", {"reward_id": self.seeded["reward"], "request_key": match.group(1)}, htmx=True)
            self.record("redemption", status, status == 200, match.group(1))
            if status == UNKNOWN:
                return

    def desk(self) -> None:
        n = 0
        while not self.stop.is_set():
            member_id = self.rng.choice(self.seeded["members"])[0]
            if n % 2 == 0:
                note = f"补录 {uuid.uuid4().hex[:12]}"
                status, _ = self.staff.request(f"/staff/members/{member_id}/points", {"delta": "1", "note": note})
                self.record("correction", status, status == 302, note)
            else:
                with self.lock:
                    barcode = self.barcodes.pop() if self.barcodes else None
                if barcode is None:
                    n += 1
                    continue
                status, _ = self.staff.request("/staff/catalogue/loans", {"lend-member": str(member_id), "lend-barcode": barcode, "lend-days": "14"})
                self.record("loan", status, status == 302, barcode)
            if status == UNKNOWN:
                return
            n += 1

    def run_until_killed(self, seconds: float) -> None:
        workers = [self.checkins, self.checkins, self.bookings, self.redemptions, self.desk]
        self.stop.clear()
        threads = [threading.Thread(target=w) for w in workers]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        self.kiosk.kill()
        self.stop.set()
        for thread in threads:
            thread.join(timeout=60)


HALF_WRITTEN = {
    "check-in without its outbox event": """SELECT c.id FROM check_in c WHERE NOT EXISTS (
        SELECT 1 FROM outbox_event e WHERE e.type = 'checkin.created' AND json_extract(e.payload, '$.checkin_id') = c.id)""",
    "member check-in without its points": """SELECT c.id FROM check_in c WHERE c.member_id IS NOT NULL AND c.points > 0 AND NOT EXISTS (
        SELECT 1 FROM points_entry p WHERE p.reason = 'checkin' AND p.reference = 'checkin:' || c.id)""",
    "check-in event without its check-in": """SELECT e.id FROM outbox_event e WHERE e.type = 'checkin.created' AND NOT EXISTS (
        SELECT 1 FROM check_in c WHERE c.id = json_extract(e.payload, '$.checkin_id'))""",
    "booking without its ticket or event": """SELECT b.id FROM booking b WHERE b.ticket = '' OR b.ticket_seq < 1 OR NOT EXISTS (
        SELECT 1 FROM outbox_event e WHERE e.type = 'booking.created' AND json_extract(e.payload, '$.booking_id') = b.id)""",
    "booking event without its booking": """SELECT e.id FROM outbox_event e WHERE e.type = 'booking.created' AND NOT EXISTS (
        SELECT 1 FROM booking b WHERE b.id = json_extract(e.payload, '$.booking_id'))""",
    "redemption without its points or event": """SELECT r.id FROM redemption r WHERE NOT EXISTS (
        SELECT 1 FROM points_entry p WHERE p.reason = 'redemption' AND p.reference = 'redemption:' || r.id) OR NOT EXISTS (
        SELECT 1 FROM outbox_event e WHERE e.type = 'points.redeemed' AND json_extract(e.payload, '$.redemption_id') = r.id)""",
    "loaned copy not marked on loan": """SELECT l.id FROM book_loan l JOIN book_copy c ON c.id = l.copy_id
        WHERE l.returned_at IS NULL AND c.status != 'on_loan'""",
    "copy on loan without a loan": """SELECT c.id FROM book_copy c WHERE c.status = 'on_loan' AND NOT EXISTS (
        SELECT 1 FROM book_loan l WHERE l.copy_id = c.id AND l.returned_at IS NULL)""",
}
COUNTED = {
    "loans and their events": ("SELECT count(*) FROM book_loan", "SELECT count(*) FROM outbox_event WHERE type = 'catalogue.loan'"),
    "corrections and their events": (
        "SELECT count(*) FROM points_entry WHERE reason = 'correction' AND note != 'seed'",
        "SELECT count(*) FROM outbox_event WHERE type = 'points.corrected'",
    ),
    "outbox sequence without gaps": ("SELECT count(*) FROM outbox_event", "SELECT coalesce(max(id), 0) FROM outbox_event"),
}
FOUND = {
    "checkin": "SELECT count(*) FROM check_in WHERE phone = ?1 OR member_id = (SELECT id FROM member WHERE phone = ?1)",
    "booking": "SELECT count(*) FROM booking WHERE request_key = ?",
    "redemption": "SELECT count(*) FROM redemption WHERE request_key = ?",
    "correction": "SELECT count(*) FROM points_entry WHERE note = ?",
    "loan": "SELECT count(*) FROM book_loan l JOIN book_copy c ON c.id = l.copy_id WHERE c.barcode = ?",
}


def check_database(kiosk: KioskProcess, load: Load) -> None:
    # One connection for every query (kiosk.sql opens one per query): after 20 kills there are
    # thousands of keys to look up, and a connection each was a third of the test's time.
    with closing(sqlite3.connect(kiosk.database)) as connection:

        def sql(query: str, *args) -> list[tuple]:
            return connection.execute(query, args).fetchall()

        assert sql("PRAGMA integrity_check") == [("ok",)]
        assert sql("PRAGMA foreign_key_check") == []
        for what, query in HALF_WRITTEN.items():
            assert sql(query) == [], what
        for what, (left, right) in COUNTED.items():
            assert sql(left) == sql(right), what
        for kind, keys in load.succeeded.items():
            lost = [key for key in keys if sql(FOUND[kind], key) != [(1,)]]
            assert lost == [], f"{kind}: answered with success but not (exactly once) in the database"


def test_sigkill_at_twenty_random_moments_loses_nothing_answered_and_half_writes_nothing(tmp_path: Path, migrated_database: Path):
    instance = tmp_path / "instance"
    seeded = seeded_instance(instance, migrated_database, _seed)
    kiosk = KioskProcess(instance, **LIMITS).start()
    rng = random.Random(14)
    load = Load(kiosk, seeded, rng)
    try:
        for _ in range(KILLS):
            load.run_until_killed(rng.uniform(0.2, 1.0))
            check_database(kiosk, load)
            kiosk.start()  # the same command, no repair step
        load.stop.set()
    finally:
        kiosk.stop()
    answered = {kind: len(statuses) for kind, statuses in load.answers.items()}
    print("answered", answered, "succeeded", {kind: len(keys) for kind, keys in load.succeeded.items()})
    assert all(status < 500 for statuses in load.answers.values() for status in statuses), {k: sorted(set(v)) for k, v in load.answers.items()}
    # Every kind of write got through at some point, so each invariant above was exercised.
    assert {kind: len(keys) > 0 for kind, keys in load.succeeded.items()} == dict.fromkeys(FOUND, True), (answered, load.succeeded.keys())


# ---- the checker can fail: each broken state below must be reported ----

BROKEN = {
    "member check-in without its points": "DELETE FROM points_entry WHERE id = (SELECT max(id) FROM points_entry WHERE reason = 'checkin')",
    "check-in without its outbox event": "DELETE FROM outbox_event WHERE id = (SELECT max(id) FROM outbox_event WHERE type = 'checkin.created')",
    "booking without its ticket or event": "UPDATE booking SET ticket = '' WHERE id = (SELECT max(id) FROM booking)",
    "copy on loan without a loan": "UPDATE book_copy SET status = 'on_loan' WHERE id = (SELECT min(id) FROM book_copy WHERE status = 'on_shelf')",
    "outbox sequence without gaps": "UPDATE outbox_event SET id = id + 1000 WHERE id = (SELECT max(id) FROM outbox_event)",
    "answered with success but not": None,  # a success the database does not hold
}


@pytest.fixture(scope="module")
def healthy(tmp_path_factory, migrated_database: Path):
    """A database the mixed load wrote for a moment (killed once), that the checker passes."""
    instance = tmp_path_factory.mktemp("healthy")
    seeded = seeded_instance(instance, migrated_database, _seed)
    kiosk = KioskProcess(instance, **LIMITS).start()
    load = Load(kiosk, seeded, random.Random(14))
    load.run_until_killed(2.0)
    check_database(kiosk, load)
    assert {"checkin", "booking"} <= set(load.succeeded), load.succeeded.keys()
    return kiosk, load


@pytest.mark.parametrize("broken", list(BROKEN))
def test_the_crash_checker_reports_a_half_written_state(healthy, tmp_path: Path, broken: str):
    kiosk, load = healthy
    copy = KioskProcess(tmp_path)
    copy_database(kiosk.database, copy.database)
    sql = BROKEN[broken]
    if sql is None:
        load = Load.__new__(Load)
        load.succeeded = {"booking": ["a-key-never-written"]}
    else:
        with sqlite3.connect(copy.database) as connection:
            assert connection.execute(sql).rowcount == 1
    with pytest.raises(AssertionError, match=broken):
        check_database(copy, load)
