"""A local hub to watch a kiosk sync (`make run-hub`): Xihu's centres, two logins, one district
notice and one district activity."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.centres.demo import XIHU_CENTRES
from kiosk.centres.services import upsert_centres
from kiosk.db import utcnow
from kiosk.hub.dashboard import create_user
from kiosk.hub.models import HubPublication, HubUser
from kiosk.hub.services import publish

DEMO_USERS = (("district", "district-demo-1", "district", None), ("cuiyuan", "cuiyuan-demo-1", "subdistrict", "XH-CY"))


def load(session: Session, zone: ZoneInfo | None = None) -> dict[str, int]:
    zone = zone or ZoneInfo("Asia/Shanghai")
    upsert_centres(session, XIHU_CENTRES)
    users = 0
    for username, password, role, centre in DEMO_USERS:
        if session.scalar(select(HubUser).where(HubUser.username == username)) is None:
            create_user(session, username, password, role, centre, display_name=username)
            users += 1
    published = 0
    if session.scalar(select(HubPublication).where(HubPublication.key == "demo-notice")) is None:
        now = utcnow()
        publish(
            session,
            "notice",
            "demo-notice",
            {"title": "西湖区党群服务中心：本周六全区志愿服务日", "body": "欢迎各社区居民报名参加。", "published_at": now.isoformat()},
        )
        start = (datetime.now(zone) + timedelta(days=1)).replace(hour=9, minute=30, second=0, microsecond=0)
        publish(
            session,
            "activity",
            "demo-activity",
            {
                "title": "全区志愿服务日",
                "category": "volunteer",
                "place": "各社区",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=3)).isoformat(),
                "points": 10,
                "policy": "once",
            },
        )
        published = 2
    return {"centres": len(XIHU_CENTRES), "users": users, "published": published}
