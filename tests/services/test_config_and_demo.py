from sqlalchemy import func, select

from kiosk.centres.models import Centre, CentreLevel
from kiosk.config import load_config
from kiosk.demo import load_demo
from kiosk.home.models import Notice
from kiosk.home.services import current_notices
from kiosk.members.models import Member
from kiosk.points.models import PointsEntry, Reward
from kiosk.staff.models import StaffUser


def test_config_precedence_defaults_then_file_then_environment_then_overrides(tmp_path, monkeypatch):
    assert load_config(tmp_path)["IDLE_SECONDS"] == 60
    (tmp_path / "kiosk.toml").write_text('IDLE_SECONDS = 90\nCENTRE_CODE = "XH-GD-JH"\n', encoding="utf-8")
    assert load_config(tmp_path)["IDLE_SECONDS"] == 90
    monkeypatch.setenv("KIOSK_IDLE_SECONDS", "120")
    monkeypatch.setenv("KIOSK_ELDER_MODE_DEFAULT", "true")
    config = load_config(tmp_path)
    assert config["IDLE_SECONDS"] == 120 and config["ELDER_MODE_DEFAULT"] is True
    assert config["CENTRE_CODE"] == "XH-GD-JH"
    assert load_config(tmp_path, {"IDLE_SECONDS": 5})["IDLE_SECONDS"] == 5
    assert load_config(tmp_path)["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'kiosk.sqlite3'}"


def test_demo_data_is_the_real_matrix_and_loading_twice_changes_nothing(session):
    first = load_demo(session)
    session.commit()
    from kiosk.checkin.models import Activity
    from kiosk.checkin.services import running_activities

    models = (Centre, Notice, StaffUser, Member, PointsEntry, Reward, Activity)
    counts = [session.scalar(select(func.count()).select_from(m)) for m in models]
    second = load_demo(session)
    session.commit()
    assert [session.scalar(select(func.count()).select_from(m)) for m in models] == counts
    assert counts[3:] == [3, 3, 4, 5]
    from zoneinfo import ZoneInfo

    from kiosk.db import utcnow

    assert "西红集市之“茶香品红韵”" in [a.title for a, _ in running_activities(session, utcnow(), ZoneInfo("Asia/Shanghai"))]
    assert first["accounts"] == 2 and second["accounts"] == 0

    district = session.scalar(select(Centre).where(Centre.level == CentreLevel.DISTRICT))
    assert district.name == "西湖区党群服务中心"
    subdistricts = session.scalars(select(Centre).where(Centre.level == CentreLevel.SUBDISTRICT)).all()
    assert len(subdistricts) == 11 and all(c.parent_id == district.id for c in subdistricts)
    cuiyuan = session.scalar(select(Centre).where(Centre.code == "XH-CY-CY1"))
    assert cuiyuan.parent.code == "XH-CY"
    assert len(current_notices(session)) == 4


def test_demo_notices_name_the_days_of_the_demo_activities(session):
    """The notices speak of the days the demo placed its activities on (the day it was loaded,
    the coming Saturday), never of a fixed date; a one-day notice goes off after its day."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from kiosk.checkin.models import Activity
    from kiosk.demo import day_words
    from kiosk.home.demo import demo_notices

    zone = ZoneInfo("Asia/Shanghai")
    load_demo(session, zone)
    session.commit()
    starts = {a.title: a.starts_at.astimezone(zone) for a in session.scalars(select(Activity))}
    notices = {n.title: n for n in current_notices(session)}
    market, lecture = starts["西红集市之“茶香品红韵”"], starts["《公司运营与风险防范》公益讲座"]
    assert notices["西红集市之“茶香品红韵”"].body.startswith(f"{day_words(market.date())} 全天")
    assert f"{day_words(lecture.date())} 上午 9:30" in notices["《公司运营与风险防范》公益讲座"].body
    weekday = "一二三四五六日"[starts["四点半课堂"].weekday()]
    assert f"四点半课堂 每周{weekday} 16:30 开课" in notices
    assert all("本月" not in n.body and "本周" not in n.body for n in notices.values())
    # On a Saturday "the coming Saturday" is a week on; the market's notice ends with its day.
    saturday = demo_notices(datetime(2026, 12, 5, 10, tzinfo=zone))
    assert "12月12日 周六 上午 9:30" in saturday[0][3] and saturday[2][3].startswith("12月5日 周六 全天")
    assert saturday[2][4] == datetime(2026, 12, 5, 23, 59, tzinfo=zone)
