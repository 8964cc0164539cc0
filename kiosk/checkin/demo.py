"""Demo activities from the real Xihu centres, one always open for check-in."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.checkin.models import Activity
from kiosk.checkin.services import save_activity
from kiosk.demo import next_weekday


def _demo_activities(today) -> list[dict]:
    """Real activities of the Xihu centres, placed around the day the demo is loaded so that
    one is always open for check-in on the kiosk."""
    saturday, sunday = next_weekday(today, 5), next_weekday(today, 6)

    def at(day, hour, minute=0):
        return datetime.combine(day, time(hour, minute)).strftime("%Y-%m-%dT%H:%M")

    return [
        dict(
            title="西红集市之“茶香品红韵”",
            category="community",
            place="中心广场",
            starts_at=at(today, 0),
            ends_at=at(today, 23, 59),
            points="5",
            policy="once",
            capacity="",
            weekly=False,
            repeat_until="",
            description="茶文化体验、积分兑换好礼",
        ),
        dict(
            title="四点半课堂",
            category="after_school",
            place="一楼教室",
            starts_at=at(today, 16, 30),
            ends_at=at(today, 18),
            points="3",
            policy="daily",
            capacity="30",
            weekly=True,
            repeat_until=(today + timedelta(weeks=12)).isoformat(),
            description="作业辅导、书法、科学小实验",
        ),
        dict(
            title="书法课",
            category="culture",
            place="二楼活动室",
            starts_at=at(today, 9),
            ends_at=at(today, 11),
            points="3",
            policy="daily",
            capacity="20",
            weekly=True,
            repeat_until=(today + timedelta(weeks=12)).isoformat(),
            description="翠苑一区老年书法班",
        ),
        dict(
            title="《公司运营与风险防范》公益讲座",
            category="lecture",
            place="黄龙商圈党群服务中心",
            starts_at=at(saturday, 9, 30),
            ends_at=at(saturday, 11, 30),
            points="5",
            policy="once",
            capacity="80",
            weekly=False,
            repeat_until="",
            description="面向辖区企业负责人的法律与税务讲座",
        ),
        dict(
            title="“小秧苗”爱科学",
            category="children",
            place="吾家小秧苗俱乐部",
            starts_at=at(sunday, 10),
            ends_at=at(sunday, 11, 30),
            points="3",
            policy="daily",
            capacity="25",
            weekly=True,
            repeat_until=(sunday + timedelta(weeks=8)).isoformat(),
            description="双浦镇吴家村儿童科学活动",
        ),
    ]


def load(session: Session, zone: ZoneInfo) -> dict[str, int]:
    existing = set(session.scalars(select(Activity.title)))
    added = 0
    for fields in _demo_activities(datetime.now(zone).date()):
        if fields["title"] not in existing:
            save_activity(session, None, zone=zone, actor=None, **fields)
            added += 1
    return {"activities": added}
