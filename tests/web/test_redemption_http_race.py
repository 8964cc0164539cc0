"""Races over real HTTP: many kiosks/desks hitting waitress at once (not a thread inside one
process calling a function): exactly one redemption wins when only one can."""

import re

from kiosk.db import write_transaction
from kiosk.members.services import card_token, register_member
from kiosk.points.models import PointsReason
from kiosk.points.services import award_points, save_reward
from kiosk.signing import TokenSigner
from tests.helpers import TEST_SIGNING_KEY, Visitor, at_once

SIGNER = TokenSigner(TEST_SIGNING_KEY, purpose="member-card")


def test_fifty_kiosks_racing_for_one_last_reward_over_http(serve_process):
    seeded = {}

    def setup(session):
        seeded["reward"] = save_reward(session, None, name="最后一把雨伞", description="", cost=10, stock=1, actor=None).id
        seeded["cards"] = []
        for i in range(50):
            member = register_member(
                session, name=f"会员{chr(0x4E00 + i)}", phone=f"139000{i:05d}", community="", age_band="60-69", consent=True, consent_version="t", actor=None
            )
            with write_transaction(session):  # award_points joins its caller's unit of work
                award_points(session, member.id, 100, PointsReason.CHECKIN, reference=f"checkin:{i}")
            seeded["cards"].append(card_token(member, SIGNER, "XH-CY-CY1"))

    kiosk = serve_process(setup=setup)
    visitors = [Visitor(kiosk.url) for _ in range(50)]
    keys = []
    for visitor, card in zip(visitors, seeded["cards"]):
        visitor.scan_card(card)
        keys.append(visitor.request_key(seeded["reward"]))
    results = at_once([lambda v=v, k=k: v.post("/points/redeem", {"reward_id": seeded["reward"], "request_key": k}) for v, k in zip(visitors, keys)])
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 49
    assert sum("抱歉，该物品刚刚兑换完了" in body for _, body in results) == 49
    stock_page = visitors[0].get("/points")
    assert "最后一把雨伞" not in stock_page  # out of stock: no longer offered
    assert (kiosk.count("redemption"), kiosk.count("points_entry WHERE delta < 0")) == (1, 1)


def test_ten_points_and_two_taps_on_two_rewards_over_http(serve_process):
    seeded = {}

    def setup(session):
        member = register_member(session, name="王芳", phone="13700001111", community="", age_band="35-59", consent=True, consent_version="t", actor=None)
        with write_transaction(session):  # award_points joins its caller's unit of work
            award_points(session, member.id, 10, PointsReason.CHECKIN, reference="checkin:1")
        seeded["card"] = card_token(member, SIGNER, "XH-CY-CY1")
        seeded["rewards"] = [save_reward(session, None, name=n, description="", cost=10, stock=5, actor=None).id for n in ("环保袋", "雨伞")]

    kiosk = serve_process(setup=setup)
    visitor = Visitor(kiosk.url)
    visitor.scan_card(seeded["card"])
    keys = [visitor.request_key(r) for r in seeded["rewards"]]
    results = at_once([lambda r=r, k=k: visitor.post("/points/redeem", {"reward_id": r, "request_key": k}) for r, k in zip(seeded["rewards"], keys)])
    assert sorted(status for status, _ in results) == [200, 409]
    assert any("积分不足" in body for _, body in results)
    # A redemption ends what the card allows in this visit (issue 10): scan again to look.
    assert "data-balance" not in visitor.get("/points")
    visitor.scan_card(seeded["card"])
    assert re.search(r"data-balance>0<", visitor.get("/points"))
