"""A local hub to watch a kiosk sync (`make run-hub`): Xihu's centres, two logins, one district
notice and one district activity."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.centres.demo import XIHU_CENTRES
from kiosk.centres.services import upsert_centres
from kiosk.db import utcnow
from kiosk.demo import day_words
from kiosk.hub.dashboard import create_user
from kiosk.hub.models import HubPublication, HubUser
from kiosk.hub.services import publish

DEMO_USERS = (("district", "district-demo-1", "district", None), ("cuiyuan", "cuiyuan-demo-1", "subdistrict", "XH-CY"))


def notice_title(day: date) -> str:
    """The demo notice's title for the demo activity's day: 西湖区党群服务中心：12月1日 周二 全区志愿服务日."""
    return f"西湖区党群服务中心：{day_words(day)} 全区志愿服务日"


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
        start = (datetime.now(zone) + timedelta(days=1)).replace(hour=9, minute=30, second=0, microsecond=0)
        # The notice names the demo activity's own day, as it was when the demo was seeded: a
        # notice is stored text, so never 本周六 or 明天 (kiosk.demo.day_words).
        publish(
            session,
            "notice",
            "demo-notice",
            {
                "title": notice_title(start.date()),
                "body": f"{day_words(start.date())} 上午 9:30 起在各社区举行，欢迎各社区居民报名参加。",
                "published_at": now.isoformat(),
            },
        )
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
