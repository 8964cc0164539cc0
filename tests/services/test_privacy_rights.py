"""A person's rights (PIPL) through the `kiosk privacy` commands, run with Flask's CLI runner on a
real instance folder and SQLite database: export everything held, erase (statistics kept, the
hub told), and the retention purge."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from kiosk.catalogue.services import give_back, lend, save_book, save_copy
from kiosk.checkin.models import CheckIn, CheckinMethod
from kiosk.checkin.services import CheckinRules, check_in
from kiosk.cli import main
from kiosk.db import utcnow, write_transaction
from kiosk.members.models import Member
from kiosk.points.models import PointsEntry, Redemption, RedemptionStatus
from kiosk.points.services import redeem, save_reward
from kiosk.staff.models import AuditEntry
from kiosk.sync.models import OutboxEvent, SyncState
from kiosk.sync.protocol import new_box_keypair
from tests.helpers import open_activity_now, register

ZONE = ZoneInfo("Asia/Shanghai")
RULES = CheckinRules(zone=ZONE, device_id="kiosk-1", district_key="district-key", repeat_minutes=5)
PHONE, NAME = "13812345678", "张建华"
GUEST = "13700001111"


def invoke(app, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(main, list(args), input=input)


def dump(instance: Path) -> str:
    """Every row of the database as SQL text (what a stolen copy of the file would show)."""
    with sqlite3.connect(instance / "kiosk.sqlite3") as connection:
        text = "\n".join(connection.iterdump())
    connection.close()
    return text


@pytest.fixture
def person(app, session):
    """张建华, a member with a check-in (points), a redeemed reward waiting at the desk, a
    returned book; and a guest who checked in with only a phone number."""
    activity = open_activity_now(session, title="书法课", points="5")
    session.commit()
    member = register(session, name=NAME, phone=PHONE)
    check_in(session, activity.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone=PHONE)
    check_in(session, activity.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone=GUEST)
    reward = save_reward(session, None, name="环保袋", description="", cost="5", stock="3", active=True, actor=None)
    redemption = redeem(session, member_id=member.id, reward_id=reward.id, channel="kiosk", request_key="r" * 32)
    book_id = save_book(session, None, {"title": "红楼梦", "authors": "曹雪芹"}, actor=None)
    save_copy(session, book_id, None, barcode="T0001", location="A-01-1", actor=None)
    lend(session, member, "T0001", zone=ZONE, staff=None)
    give_back(session, "T0001", zone=ZONE, staff=None)
    session.commit()
    return {"member_id": member.id, "redemption_id": redemption.id, "activity_id": activity.id}


def _hand_over(session, redemption_id: int) -> None:
    with write_transaction(session):
        session.execute(update(Redemption).where(Redemption.id == redemption_id).values(status=RedemptionStatus.HANDED_OVER, closed_at=utcnow()))


def test_export_writes_a_readable_chinese_page_and_json_of_everything_held(app, session, person, instance_path):
    result = invoke(app, "privacy", "export", "--phone", PHONE)
    assert result.exit_code == 0, result.output
    session.rollback()
    assert "个人信息已导出" in result.output
    paths = [Path(line) for line in result.output.splitlines() if line.startswith("/")]
    page, data_file = sorted(paths, key=lambda p: p.suffix)  # .html, .json
    assert page.parent == instance_path / "privacy-exports" and PHONE not in page.name
    assert page.stat().st_mode & 0o077 == 0 and data_file.stat().st_mode & 0o077 == 0
    html = page.read_text(encoding="utf-8")
    for text in ("您的个人信息", "会员信息", NAME, PHONE, "书法课", "积分余额", "环保袋", "红楼梦", "T0001", "区级平台收到的信息", "审计日志"):
        assert text in html, text
    assert "<script" not in html
    data = json.loads(data_file.read_text(encoding="utf-8"))
    assert data["member"]["name"] == NAME and data["member"]["phone"] == PHONE
    assert len(data["checkins"]) == 1 and data["checkins"][0]["activity"] == "书法课"
    assert data["points_balance"] == 0 and len(data["points"]) == 2  # +5 for the check-in, -5 for the bag
    assert [r["reward"] for r in data["redemptions"]] == ["环保袋"]
    assert [loan["title"] for loan in data["loans"]] == ["红楼梦"] and data["loans"][0]["returned_at"]
    # Audit actions in words for the reader (not raw codes), the code kept beside them.
    assert any(a["action_code"] == "member.register" and a["action"] == "登记会员" for a in data["audit"])
    assert data["district"]["events_naming_you"] >= 2  # registration and check-in, phone not sealed yet
    # The export itself is audited, naming the member, never the number.
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.export")).one()
    assert entry.target == f"member:{person['member_id']}" and entry.actor_name == "cli" and PHONE not in entry.detail

    guest = invoke(app, "privacy", "export", "--phone", GUEST, "--dest", str(instance_path / "desk"))
    assert guest.exit_code == 0, guest.output
    guest_data = json.loads(next((instance_path / "desk").glob("*.json")).read_text(encoding="utf-8"))
    assert guest_data["member"] is None and len(guest_data["checkins"]) == 1 and guest_data["points"] == []


def test_an_unknown_or_malformed_number_is_refused_in_chinese_and_writes_nothing(app, session, person, instance_path):
    audits = session.scalar(select(func.count()).select_from(AuditEntry))
    unknown = invoke(app, "privacy", "export", "--phone", "13999999999")
    assert unknown.exit_code == 1 and "本终端没有这个手机号的任何记录" in unknown.output
    bad = invoke(app, "privacy", "erase", "--phone", "12345", "--yes")
    assert bad.exit_code == 1 and "11" in bad.output and "Traceback" not in bad.output
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == audits
    assert not (instance_path / "privacy-exports").exists()


def test_erase_waits_for_open_business_asks_first_then_removes_name_and_number_but_keeps_the_figures(app, session, person, instance_path):
    member_id = person["member_id"]
    before = dump(instance_path)
    refused = invoke(app, "privacy", "erase", "--phone", PHONE, "--yes")
    assert refused.exit_code == 1 and "还有礼品待领取" in refused.output
    assert dump(instance_path) == before  # a refusal writes nothing

    _hand_over(session, person["redemption_id"])
    session.commit()
    declined = invoke(app, "privacy", "erase", "--phone", PHONE, input="n\n")
    assert declined.exit_code == 1 and "确定删除 张*华" in declined.output and "138****5678" in declined.output
    assert session.scalar(select(Member.name).where(Member.id == member_id)) == NAME

    checkins = session.scalar(select(func.count()).select_from(CheckIn))
    points = session.scalar(select(func.sum(PointsEntry.delta)).where(PointsEntry.member_id == member_id))
    session.commit()
    erased = invoke(app, "privacy", "erase", "--phone", PHONE, input="y\n")
    assert erased.exit_code == 0, erased.output
    assert "已删除" in erased.output and "区级平台" in erased.output
    session.rollback()  # read what the command committed
    member = session.get(Member, member_id)
    assert member is not None and member.name == "已删除" and member.phone == f"E{member_id:010d}" and not member.active and member.card_serial == 2
    # The figures stay: the same check-ins and ledger, now belonging to nobody.
    assert session.scalar(select(func.count()).select_from(CheckIn)) == checkins
    assert session.scalar(select(func.sum(PointsEntry.delta)).where(PointsEntry.member_id == member_id)) == points
    # Nowhere in the database: not the number, its masked form, nor the name.
    text = dump(instance_path)
    for secret in (PHONE, "138****5678", NAME):
        assert secret not in text, secret
    assert GUEST in text  # the other person is untouched
    # The hub is told (not enrolled yet: the hub never saw the person, so the event names nobody).
    event = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "privacy.erased")).one()
    assert event.payload == {"member": True}
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.erase")).one()
    assert entry.target == f"member:{member_id}" and "check_in=1" in entry.detail
    # Erasing twice says so.
    again = invoke(app, "privacy", "erase", "--phone", PHONE, "--yes")
    assert again.exit_code == 1 and "本终端没有这个手机号的任何记录" in again.output


def test_erasing_a_guest_unlinks_their_check_in_so_it_counts_but_names_no_one(app, session, person, instance_path):
    erased = invoke(app, "privacy", "erase", "--phone", GUEST, "--yes")
    assert erased.exit_code == 0, erased.output
    session.rollback()
    row = session.scalars(select(CheckIn).where(CheckIn.member_id.is_(None))).one()
    assert row.phone is None and row.person_key == f"x:c{row.id}" and row.points == 0
    assert GUEST not in dump(instance_path) and PHONE in dump(instance_path)
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.erase")).one()
    assert entry.target == "guest" and GUEST not in entry.detail


def test_once_enrolled_the_erasure_event_carries_the_number_sealed_to_the_hub_only(app, session, person):
    _hand_over(session, person["redemption_id"])
    _private, public = new_box_keypair()
    with write_transaction(session):
        session.add(SyncState(id=1, hub_url="http://hub.invalid", key_id="k", key_secret="s", hub_public_key=public))
    assert invoke(app, "privacy", "erase", "--phone", PHONE, "--yes").exit_code == 0
    session.rollback()
    payload = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "privacy.erased")).one().payload
    assert set(payload) == {"member", "person_sealed"} and PHONE not in json.dumps(payload)


def test_purge_unlinks_records_older_than_the_retention_period_and_keeps_the_recent_ones(app, session, person, instance_path):
    long_ago = utcnow() - timedelta(days=4 * 365)
    activity = open_activity_now(session, title="四点半课堂", points="2")
    session.commit()
    check_in(session, activity.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone=PHONE)
    with write_transaction(session):  # the first visit was four years ago
        session.execute(update(CheckIn).where(CheckIn.activity_id == person["activity_id"]).values(created_at=long_ago))
        session.execute(_age_loans(long_ago))
    result = invoke(app, "privacy", "purge")
    assert result.exit_code == 0, result.output
    assert "不再关联到个人" in result.output and "check_in 2" in result.output and "book_loan 1" in result.output
    session.expire_all()
    old = session.scalars(select(CheckIn).where(CheckIn.activity_id == person["activity_id"])).all()
    assert len(old) == 2 and all(c.member_id is None and c.phone is None and re.fullmatch(r"x:c\d+", c.person_key) for c in old)
    recent = session.scalars(select(CheckIn).where(CheckIn.activity_id == activity.id)).one()
    assert recent.member_id == person["member_id"]
    with sqlite3.connect(instance_path / "kiosk.sqlite3") as raw:
        assert raw.execute("SELECT count(*) FROM book_loan WHERE member_id IS NULL").fetchone()[0] == 1
    raw.close()
    assert session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.purge")).one().detail.startswith("retention_days=1095")
    # Running it again finds nothing more; a retention below one day is refused.
    assert "check_in 0" in invoke(app, "privacy", "purge").output
    refused = invoke(app, "privacy", "purge", "--days", "0")
    assert refused.exit_code == 1 and "至少为一天" in refused.output


def _age_loans(when):
    from kiosk.catalogue.models import Loan

    return update(Loan).values(borrowed_at=when, returned_at=when + timedelta(days=10))


def test_retention_setting_comes_from_the_config(tmp_path):
    from tests.helpers import make_app

    assert make_app(tmp_path / "a").config["PRIVACY_RETENTION_DAYS"] == 1095
    assert make_app(tmp_path / "b", PRIVACY_RETENTION_DAYS=30).config["PRIVACY_RETENTION_DAYS"] == 30
