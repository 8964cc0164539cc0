"""Demo rows: notices of the Xihu centres (stable keys: loading twice changes nothing)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from kiosk.db import utcnow, write_transaction
from kiosk.home.services import upsert_notice

DEMO_NOTICES = [
    ("demo-2026-lecture", "district", "《公司运营与风险防范》公益讲座", "黄龙商圈党群服务中心，本周六上午 9:30，欢迎辖区企业负责人报名参加。"),
    ("demo-2026-sidianban", "centre", "四点半课堂 周一至周五 16:30 开课", "作业辅导、书法、科学小实验，请家长在服务台登记。"),
    ("demo-2026-jishi", "district", "西红集市之“茶香品红韵”", "本月 15 日上午在西湖区党群服务中心广场举行，现场可兑换积分好礼。"),
    ("demo-2026-haircut", "centre", "免费理发 每周三上午", "志愿者为辖区老人和新就业群体提供免费理发，可在本机“服务预约”预约。"),
]


def load(session: Session, zone: ZoneInfo) -> dict[str, int]:
    now = utcnow()
    with write_transaction(session):
        for index, (key, source, title, body) in enumerate(DEMO_NOTICES):
            upsert_notice(session, key=key, source=source, title=title, body=body, published_at=now - timedelta(hours=index + 1), expires_at=None)
    return {"notices": len(DEMO_NOTICES)}
