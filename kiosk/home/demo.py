"""Demo rows: notices of the Xihu centres (stable keys: loading twice changes nothing).

The notices announce the demo's own activities and services (kiosk/checkin/demo.py,
kiosk/booking/demo.py) on the days those are placed around the day the demo is loaded: 西红集市
that day, the lecture the coming Saturday, 四点半课堂 on that weekday every week. A notice of a
single day goes off the home screen after it (expires_at)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.db import utcnow, write_transaction
from kiosk.demo import day_words, next_weekday
from kiosk.home.models import Notice
from kiosk.home.services import upsert_notice

_WEEKDAYS = "一二三四五六日"


def demo_notices(now: datetime) -> list[tuple[str, str, str, str, datetime | None]]:
    """(key, source, title, body, expires at) for a demo loaded at ``now`` (the centre's time)."""
    today = now.date()
    saturday = next_weekday(today, 5)

    def end_of(day, hour=23, minute=59):
        return datetime.combine(day, time(hour, minute), tzinfo=now.tzinfo)

    return [
        (
            "demo-2026-lecture",
            "district",
            "《公司运营与风险防范》公益讲座",
            f"黄龙商圈党群服务中心，{day_words(saturday)} 上午 9:30，欢迎辖区企业负责人报名参加。",
            end_of(saturday, 11, 30),
        ),
        ("demo-2026-sidianban", "centre", f"四点半课堂 每周{_WEEKDAYS[today.weekday()]} 16:30 开课", "作业辅导、书法、科学小实验，请家长在服务台登记。", None),
        (
            "demo-2026-jishi",
            "district",
            "西红集市之“茶香品红韵”",
            f"{day_words(today)} 全天在中心广场举行，现场可兑换积分好礼。",
            end_of(today),
        ),
        ("demo-2026-haircut", "centre", "免费理发 每周三上午", "志愿者为辖区老人和新就业群体提供免费理发，可在本机“服务预约”预约。", None),
    ]


def load(session: Session, zone: ZoneInfo) -> dict[str, int]:
    """Adds the notices not there yet: loaded again on a later day, the demo keeps the ones that
    announce the activities it placed then (kiosk/checkin/demo.py adds missing ones only too)."""
    now = utcnow()
    notices = demo_notices(now.astimezone(zone))
    added = 0
    with write_transaction(session):
        existing = set(session.scalars(select(Notice.key).where(Notice.key.in_([n[0] for n in notices]))))
        for index, (key, source, title, body, expires_at) in enumerate(notices):
            if key not in existing:
                upsert_notice(session, key=key, source=source, title=title, body=body, published_at=now - timedelta(hours=index + 1), expires_at=expires_at)
                added += 1
    return {"notices": added}
