"""Demo services of the real Xihu centres (DESIGN.md §10): free haircuts and mending by 嘉荷社区's
volunteers for gig workers and elders, legal and tax advice from 黄龙商圈's partners, counselling.
The teams are the other centres'; the places are rooms of the kiosk's own centre, because a
visitor books here to be served here (a ticket naming another centre's floor confused a newcomer)."""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.booking.models import Provider, ProviderKind, ScheduleTemplate, Service, ServiceCategory
from kiosk.db import write_transaction

# (key, name, prefix, category, icon, place, description, provider, provider kind, duration,
#  [(weekday, start, end, slot minutes, places)], points on serve)
DEMO_SERVICES = [
    (
        "haircut-jiahe",
        "理发",
        "A",
        ServiceCategory.HAIRCUT,
        "✂️",
        "一楼便民服务区",
        "志愿者免费理发，面向快递小哥、外卖骑手和社区长辈",
        "嘉荷社区理发志愿队",
        ProviderKind.VOLUNTEER,
        20,
        [(2, time(9), time(11, 30), 20, 2)],
        2,
    ),
    (
        "mending-jiahe",
        "缝补",
        "B",
        ServiceCategory.MENDING,
        "🧵",
        "一楼便民服务区",
        "缝扣子、改裤脚、补衣服",
        "巧手缝补志愿者",
        ProviderKind.VOLUNTEER,
        30,
        [(2, time(9), time(11, 30), 30, 1), (4, time(14), time(16), 30, 1)],
        1,
    ),
    (
        "legal-huanglong",
        "法律咨询",
        "C",
        ServiceCategory.LEGAL,
        "⚖️",
        "三楼法律服务室",
        "合同、劳动用工、公司运营中的法律问题",
        "公益律师服务团",
        ProviderKind.ORGANISATION,
        30,
        [(1, time(14), time(17), 30, 1)],
        0,
    ),
    (
        "tax-huanglong",
        "税费政策咨询",
        "D",
        ServiceCategory.TAX,
        "🧾",
        "三楼法律服务室",
        "小微企业税费优惠、社保政策解读",
        "西湖区注会评估行业志愿者",
        ProviderKind.ORGANISATION,
        30,
        [(3, time(14), time(16), 30, 1)],
        0,
    ),
    (
        "counselling",
        "心理健康咨询",
        "E",
        ServiceCategory.COUNSELLING,
        "💬",
        "二楼心理咨询室",
        "一对一倾听与疏导，内容保密",
        "心理咨询志愿者",
        ProviderKind.VOLUNTEER,
        50,
        [(5, time(9), time(11), 60, 1)],
        0,
    ),
]


def load(session: Session, zone: ZoneInfo) -> dict[str, int]:
    added = 0
    with write_transaction(session):
        for key, name, prefix, category, icon, place, description, provider_name, kind, duration, windows, points in DEMO_SERVICES:
            if session.scalar(select(Service.id).where(Service.demo_key == key)) is not None:
                continue
            if session.scalar(select(Service.id).where(Service.prefix == prefix)) is not None:
                continue  # a centre's own service already uses the letter
            service = Service(
                demo_key=key,
                name=name,
                prefix=prefix,
                category=category,
                icon=icon,
                place=place,
                description=description,
                duration_minutes=duration,
                points_on_serve=points,
            )
            session.add(service)
            session.flush()
            provider = Provider(service_id=service.id, name=provider_name, kind=kind)
            session.add(provider)
            session.flush()
            for weekday, starts, ends, minutes, places in windows:
                session.add(
                    ScheduleTemplate(
                        service_id=service.id, provider_id=provider.id, weekday=weekday, starts=starts, ends=ends, slot_minutes=minutes, capacity=places
                    )
                )
            added += 1
    return {"services": added}
