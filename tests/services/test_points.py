import threading
import uuid

import pytest
from sqlalchemy import func, select

from kiosk.extensions import db
from kiosk.points.models import PointsEntry, PointsReason, Redemption, RedemptionStatus, Reward
from kiosk.points.services import (
    PointsError,
    award_points,
    balance,
    cancel_redemption,
    correct_points,
    hand_over,
    parse_integer,
    redeem,
    save_reward,
)
from kiosk.staff.models import AuditEntry
from tests.helpers import register


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def member(session):
    m = register(session)
    session.commit()
    return m


@pytest.fixture
def admin(make_staff):
    return make_staff("chen.admin", "correct-horse-2", "admin")


def reward(session, name="环保袋", cost=10, stock=5):
    r = save_reward(session, None, name=name, description="", cost=cost, stock=stock, actor=None)
    session.commit()
    return r


def test_balance_is_the_sum_of_the_ledger(session, member):
    assert balance(session, member.id) == 0
    award_points(session, member.id, 20, PointsReason.CHECKIN, reference="checkin:1")
    award_points(session, member.id, 5, PointsReason.VOLUNTEER, reference="volunteer:1")
    award_points(session, member.id, -8, PointsReason.CORRECTION)
    session.commit()
    assert balance(session, member.id) == 17


def test_the_same_thing_cannot_earn_points_twice(session, member):
    from sqlalchemy.exc import IntegrityError

    award_points(session, member.id, 20, PointsReason.CHECKIN, reference="checkin:1")
    session.commit()
    with pytest.raises(IntegrityError):
        award_points(session, member.id, 20, PointsReason.CHECKIN, reference="checkin:1")
    session.rollback()
    assert balance(session, member.id) == 20


@pytest.mark.parametrize("delta", [0, 10_001, -10_001, True, 1.5, "5"])
def test_invalid_deltas_are_refused(session, member, delta):
    with pytest.raises(PointsError):
        award_points(session, member.id, delta, PointsReason.CORRECTION)


@pytest.mark.parametrize("raw", ["", "1.5", "abc", "1e3", " ", None, "٣", "10000000000"])
def test_only_whole_numbers_parse(raw):
    with pytest.raises(PointsError) as info:
        parse_integer(raw, "delta")
    assert info.value.code == "not_an_integer"


def test_full_width_digits_from_an_ime_are_read():
    assert parse_integer("１２", "delta") == 12 and parse_integer("-５", "delta") == -5


def test_corrections_are_new_entries_with_a_reason(session, member, admin):
    with pytest.raises(PointsError) as info:
        correct_points(session, member, "10", "  ", actor=admin)
    assert info.value.code == "note_required"
    with pytest.raises(PointsError) as info:
        correct_points(session, member, "-1", "扣错了", actor=admin)
    assert info.value.code == "balance_negative"
    entry = correct_points(session, member, "+15", "补录 11 月书法课", actor=admin)
    session.commit()
    assert (entry.delta, entry.reason, entry.actor_id) == (15, PointsReason.CORRECTION, admin.id)
    assert balance(session, member.id) == 15


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"name": ""}, "name_required"),
        ({"name": "奖" * 41}, "name_too_long"),
        ({"cost": "0"}, "bad_cost"),
        ({"cost": "-5"}, "bad_cost"),
        ({"cost": "2.5"}, "not_an_integer"),
        ({"stock": "-1"}, "bad_stock"),
        ({"stock": "many"}, "not_an_integer"),
        ({"picture": b"not an image"}, "picture_format"),
    ],
)
def test_bad_rewards_are_refused(session, fields, code):
    values = {"name": "环保袋", "description": "", "cost": "10", "stock": "3", "actor": None} | fields
    with pytest.raises(PointsError) as info:
        save_reward(session, None, **values)
    assert info.value.code == code
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Reward)) == 0


def test_reward_picture_is_re_encoded_small(session):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (2000, 1000), "red").save(buffer, format="PNG")
    r = save_reward(session, None, name="雨伞", description="", cost=30, stock=2, picture=buffer.getvalue(), actor=None)
    assert r.picture_type == "image/jpeg"
    assert Image.open(io.BytesIO(r.picture)).size == (480, 240)


def test_redeem_takes_exactly_the_cost_and_one_from_stock(session, member):
    award_points(session, member.id, 25, PointsReason.CHECKIN, reference="checkin:1")
    session.commit()
    r = reward(session, cost=10, stock=5)
    redemption = redeem(session, member_id=member.id, reward_id=r.id, channel="kiosk", request_key=key())
    session.refresh(r)
    assert balance(session, member.id) == 15 and r.stock == 4
    assert redemption.status == RedemptionStatus.PENDING and len(redemption.pickup_code) == 6
    entry = session.scalar(select(PointsEntry).where(PointsEntry.reason == PointsReason.REDEMPTION))
    assert (entry.delta, entry.reference) == (-10, f"redemption:{redemption.id}")


def test_the_same_tap_twice_redeems_once(session, member):
    award_points(session, member.id, 100, PointsReason.CHECKIN, reference="checkin:1")
    session.commit()
    r = reward(session)
    tap = key()
    first = redeem(session, member_id=member.id, reward_id=r.id, channel="kiosk", request_key=tap)
    second = redeem(session, member_id=member.id, reward_id=r.id, channel="kiosk", request_key=tap)
    assert first.id == second.id and balance(session, member.id) == 90


@pytest.mark.parametrize(
    "situation, code", [("poor", "insufficient_points"), ("empty", "out_of_stock"), ("gone", "unknown_reward"), ("off", "reward_unavailable")]
)
def test_refused_redemptions_change_nothing(session, member, situation, code):
    award_points(session, member.id, 5 if situation == "poor" else 50, PointsReason.CHECKIN, reference="checkin:1")
    session.commit()
    r = reward(session, cost=10, stock=0 if situation == "empty" else 3)
    if situation == "off":
        save_reward(session, r, name=r.name, description="", cost=10, stock=3, active=False, actor=None)
        session.commit()
    before = (balance(session, member.id), r.stock)
    with pytest.raises(PointsError) as info:
        redeem(session, member_id=member.id, reward_id=999 if situation == "gone" else r.id, channel="kiosk", request_key=key())
    assert info.value.code == code
    session.refresh(r)
    assert (balance(session, member.id), r.stock) == before
    assert session.scalar(select(func.count()).select_from(Redemption)) == 0


def test_hand_over_and_cancel(session, member, admin):
    award_points(session, member.id, 30, PointsReason.CHECKIN, reference="checkin:1")
    session.commit()
    r = reward(session, cost=10, stock=2)
    a = redeem(session, member_id=member.id, reward_id=r.id, channel="kiosk", request_key=key())
    b = redeem(session, member_id=member.id, reward_id=r.id, channel="desk", request_key=key(), actor=admin)
    assert hand_over(session, a.id, actor=admin).status == RedemptionStatus.HANDED_OVER
    with pytest.raises(PointsError) as info:
        cancel_redemption(session, a.id, actor=admin, note="x")
    assert info.value.code == "redemption_closed"
    cancel_redemption(session, b.id, actor=admin, note="会员改主意了")
    session.refresh(r)
    assert balance(session, member.id) == 20 and r.stock == 1
    with pytest.raises(PointsError):
        cancel_redemption(session, b.id, actor=admin, note="again")
    assert balance(session, member.id) == 20


def race(app, attempts):
    """Run each (member_id, reward_id) attempt in its own thread and app context at once."""
    barrier = threading.Barrier(len(attempts))
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(member_id, reward_id):
        with app.app_context():
            barrier.wait()
            try:
                redeem(db.session, member_id=member_id, reward_id=reward_id, channel="kiosk", request_key=key())
                result = "ok"
            except PointsError as error:
                result = error.code
            finally:
                db.session.remove()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=a) for a in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


def test_fifty_redemptions_racing_for_the_last_item_yield_exactly_one(app, session):
    members = [register(session, name=f"会员{chr(0x4E00 + i)}", phone=f"138000{i:05d}") for i in range(50)]
    session.flush()
    for m in members:
        award_points(session, m.id, 100, PointsReason.CHECKIN, reference=f"checkin:{m.id}")
    session.commit()
    r = reward(session, cost=10, stock=1)
    outcomes = race(app, [(m.id, r.id) for m in members])
    assert outcomes.count("ok") == 1 and outcomes.count("out_of_stock") == 49
    session.rollback()
    assert session.scalar(select(Reward.stock).where(Reward.id == r.id)) == 0
    assert session.scalar(select(func.count()).select_from(Redemption)) == 1
    assert sum(balance(session, m.id) for m in members) == 50 * 100 - 10


def test_ten_points_racing_two_ten_point_redemptions_yield_exactly_one(app, session, member):
    award_points(session, member.id, 10, PointsReason.CHECKIN, reference="checkin:1")
    session.commit()
    bag, umbrella = reward(session, "环保袋", cost=10, stock=5), reward(session, "雨伞", cost=10, stock=5)
    outcomes = race(app, [(member.id, bag.id), (member.id, umbrella.id)])
    assert outcomes == ["insufficient_points", "ok"]
    session.rollback()
    assert balance(session, member.id) == 0
    assert session.scalar(select(func.sum(Reward.stock))) == 9


def test_a_kiosk_redemption_is_audited_as_the_kiosk_not_the_cli(session, member):
    award_points(session, member.id, 25, PointsReason.CHECKIN, reference="checkin:1")
    session.commit()
    r = reward(session, cost=10, stock=5)
    redeem(session, member_id=member.id, reward_id=r.id, channel="kiosk", request_key=key())
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "points.redeem"))
    assert (entry.actor_id, entry.actor_name) == (None, "kiosk")
