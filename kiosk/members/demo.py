"""Demo members (139-0000-xxxx numbers, common names, not real people) with some points."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.db import write_transaction
from kiosk.members.models import Member
from kiosk.members.services import register_member
from kiosk.points.models import PointsReason
from kiosk.points.services import award_points

# Demo members use the 139-0000-xxxx range; their names are common ones, not real people.
DEMO_MEMBERS: list[tuple[str, str, str, str, list[tuple[int, str, str | None, str]]]] = [
    ("张建华", "13900000001", "翠苑一区", "70-79", [(60, "volunteer", "demo:zjh:1", "西红集市志愿服务")]),
    ("李秀英", "13900000002", "翠苑一区", "60-69", [(35, "correction", None, "书法课 7 次（纸质签到补录）")]),
    ("王小明", "13900000003", "嘉荷社区", "0-17", [(15, "correction", None, "四点半课堂 3 次（纸质签到补录）")]),
]


def load(session: Session, zone: ZoneInfo) -> dict[str, int]:
    existing = set(session.scalars(select(Member.phone)))
    added = 0
    for name, phone, community, band, grants in DEMO_MEMBERS:
        if phone in existing:
            continue
        member = register_member(session, name=name, phone=phone, community=community, age_band=band, consent=True, consent_version="demo", actor=None)
        with write_transaction(session):
            for delta, reason, reference, note in grants:
                award_points(session, member.id, delta, PointsReason(reason), reference=reference, note=note)
        added += 1
    return {"members": added}
