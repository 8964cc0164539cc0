"""Demo rows: the real matrix of Xihu District's centres (DESIGN.md §10): 1 + 11 + N."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from kiosk.centres.models import CentreLevel
from kiosk.centres.services import CentreSpec, upsert_centres
from kiosk.db import write_transaction

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


def load(session: Session, zone: ZoneInfo) -> dict[str, int]:
    with write_transaction(session):
        upsert_centres(session, XIHU_CENTRES)
    return {"centres": len(XIHU_CENTRES)}
