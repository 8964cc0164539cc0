"""Demo rewards for 积分兑换."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.points.models import Reward
from kiosk.points.services import save_reward

DEMO_REWARDS = [
    ("环保购物袋", "帆布袋一只", 20, 30),
    ("晴雨伞", "折叠伞一把", 50, 10),
    ("理发优惠券", "合作理发店 10 元券", 30, 20),
    ("《红楼梦》插图本", "阅览室赠书", 80, 3),
]


def load(session: Session, zone: ZoneInfo) -> dict[str, int]:
    existing = set(session.scalars(select(Reward.name)))
    added = 0
    for name, description, cost, stock in DEMO_REWARDS:
        if name not in existing:
            save_reward(session, None, name=name, description=description, cost=cost, stock=stock, actor=None)
            added += 1
    return {"rewards": added}
