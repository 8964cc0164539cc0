"""Demo data from real centres and activities of Hangzhou's Xihu District (DESIGN.md §10).

Idempotent: every row has a stable key, so running `kiosk demo` twice changes nothing.
Later features add their own demo rows here (activities, services, books, members).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.centres.models import CentreLevel
from kiosk.centres.services import CentreSpec, upsert_centres
from kiosk.checkin.models import Activity
from kiosk.checkin.services import save_activity
from kiosk.db import utcnow
from kiosk.home.services import upsert_notice
from kiosk.members.models import Member
from kiosk.members.services import register_member
from kiosk.points.models import PointsReason, Reward
from kiosk.points.services import award_points, save_reward
from kiosk.staff.models import StaffUser
from kiosk.staff.services import create_staff_user

L = CentreLevel

XIHU_CENTRES = [
    CentreSpec("XH", "西湖区党群服务中心", L.DISTRICT),
    CentreSpec("XH-BS", "北山街道党群服务中心", L.SUBDISTRICT, "XH"),
    CentreSpec("XH-XX", "西溪街道党群服务中心", L.SUBDISTRICT, "XH"),
    CentreSpec("XH-LY", "灵隐街道党群服务中心", L.SUBDISTRICT, "XH"),
    CentreSpec("XH-CY", "翠苑街道党群服务中心", L.SUBDISTRICT, "XH"),
    CentreSpec("XH-WX", "文新街道党群服务中心", L.SUBDISTRICT, "XH"),
    CentreSpec("XH-GD", "古荡街道党群服务中心", L.SUBDISTRICT, "XH"),
    CentreSpec("XH-XHJD", "西湖街道党群服务中心", L.SUBDISTRICT, "XH"),
    CentreSpec("XH-LX", "留下街道党群服务中心", L.SUBDISTRICT, "XH"),
    CentreSpec("XH-ZT", "转塘街道党群服务中心", L.SUBDISTRICT, "XH"),
    CentreSpec("XH-JC", "蒋村街道党群服务中心", L.SUBDISTRICT, "XH"),
    CentreSpec("XH-SP", "双浦镇党群服务中心", L.SUBDISTRICT, "XH"),
    CentreSpec("XH-ZT-CDC", "转塘街道长埭村党群服务中心", L.VILLAGE, "XH-ZT"),
    CentreSpec("XH-CY-CY1", "翠苑街道翠苑一区党群服务中心", L.COMMUNITY, "XH-CY"),
    CentreSpec("XH-SP-WJC", "双浦镇吴家村党群服务中心", L.VILLAGE, "XH-SP"),
    CentreSpec("XH-ZT-YCXZ", "艺创小镇党群服务中心", L.BUSINESS, "XH-ZT"),
    CentreSpec("XH-GD-JH", "古荡街道嘉荷社区党群服务中心", L.COMMUNITY, "XH-GD"),
    CentreSpec("XH-LY-HLSQ", "灵隐街道黄龙商圈党群服务中心", L.BUSINESS, "XH-LY"),
    CentreSpec("XH-ZHPG", "西湖区注会评估行业党群服务中心", L.INDUSTRY, "XH"),
]

DEMO_NOTICES = [
    ("demo-2026-lecture", "district", "《公司运营与风险防范》公益讲座", "黄龙商圈党群服务中心，本周六上午 9:30，欢迎辖区企业负责人报名参加。"),
    ("demo-2026-sidianban", "centre", "四点半课堂 周一至周五 16:30 开课", "作业辅导、书法、科学小实验，请家长在服务台登记。"),
    ("demo-2026-jishi", "district", "西红集市之“茶香品红韵”", "本月 15 日上午在西湖区党群服务中心广场举行，现场可兑换积分好礼。"),
    ("demo-2026-haircut", "centre", "免费理发 每周三上午", "志愿者为辖区老人和新就业群体提供免费理发，可在本机“服务预约”预约。"),
]

# Demo accounts only: `make run` prints them. A real centre removes them and adds its own.
DEMO_ACCOUNTS = [
    ("demo-admin", "kiosk-demo-admin", "admin"),
    ("demo-staff", "kiosk-demo-staff", "staff"),
]


# Demo members use the 139-0000-xxxx range; their names are common ones, not real people.
DEMO_MEMBERS = [
    ("张建华", "13900000001", "翠苑一区", "70-79", [(60, "volunteer", "demo:zjh:1", "西红集市志愿服务")]),
    ("李秀英", "13900000002", "翠苑一区", "60-69", [(35, "correction", None, "书法课 7 次（纸质签到补录）")]),
    ("王小明", "13900000003", "嘉荷社区", "0-17", [(15, "correction", None, "四点半课堂 3 次（纸质签到补录）")]),
]
DEMO_REWARDS = [
    ("环保购物袋", "帆布袋一只", 20, 30),
    ("晴雨伞", "折叠伞一把", 50, 10),
    ("理发优惠券", "合作理发店 10 元券", 30, 20),
    ("《红楼梦》插图本", "阅览室赠书", 80, 3),
]


def _demo_activities(today) -> list[dict]:
    """Real activities of the Xihu centres, placed around the day the demo is loaded so that
    one is always open for check-in on the kiosk."""
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    sunday = today + timedelta(days=(6 - today.weekday()) % 7 or 7)

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


def load_demo(session: Session, zone: ZoneInfo | None = None) -> dict[str, int]:
    zone = zone or ZoneInfo("Asia/Shanghai")
    upsert_centres(session, XIHU_CENTRES)
    now = utcnow()
    for index, (key, source, title, body) in enumerate(DEMO_NOTICES):
        upsert_notice(session, key=key, source=source, title=title, body=body, published_at=now - timedelta(hours=index + 1), expires_at=None)
    existing = set(session.scalars(select(StaffUser.username)))
    accounts = 0
    for username, password, role in DEMO_ACCOUNTS:
        if username not in existing:
            create_staff_user(session, username, password, role, display_name=username)
            accounts += 1
    existing_rewards = set(session.scalars(select(Reward.name)))
    for name, description, cost, stock in DEMO_REWARDS:
        if name not in existing_rewards:
            save_reward(session, None, name=name, description=description, cost=cost, stock=stock, actor=None)
    existing_phones = set(session.scalars(select(Member.phone)))
    for name, phone, community, band, grants in DEMO_MEMBERS:
        if phone in existing_phones:
            continue
        member = register_member(session, name=name, phone=phone, community=community, age_band=band, consent=True, consent_version="demo", actor=None)
        for delta, reason, reference, note in grants:
            award_points(session, member.id, delta, PointsReason(reason), reference=reference, note=note)
    existing_titles = set(session.scalars(select(Activity.title)))
    for fields in _demo_activities(datetime.now(zone).date()):
        if fields["title"] not in existing_titles:
            save_activity(session, None, zone=zone, actor=None, **fields)
    return {"centres": len(XIHU_CENTRES), "notices": len(DEMO_NOTICES), "accounts": accounts}
