"""Natural dates on visitor pages (kiosk.timefmt): 11月28日 周六 14:00–16:00, 今天, 全天, 跨夜."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from kiosk.timefmt import day_text, month_day_text, span_text

ZONE = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 25)  # a Wednesday


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ZONE)


@pytest.mark.parametrize(
    ("start", "end", "zh", "en"),
    [
        (at(28, 14), at(28, 16), "11月28日 周六 14:00–16:00", "Sat 28 Nov 14:00–16:00"),
        (at(25, 14), at(25, 16), "今天 14:00–16:00", "Today 14:00–16:00"),
        (at(26, 9), at(26, 11, 30), "明天 09:00–11:30", "Tomorrow 09:00–11:30"),
        (at(28, 0), at(28, 23, 59), "11月28日 周六 全天", "Sat 28 Nov, all day"),
        (at(25, 0), at(26, 0), "今天 全天", "Today, all day"),
        (at(25, 22), at(26, 2), "今天 22:00–次日 02:00（跨夜）", "Today 22:00–02:00 next day (overnight)"),
        (at(28, 9), at(30, 17), "11月28日 周六 09:00 – 11月30日 周一 17:00", "Sat 28 Nov 09:00 – Mon 30 Nov 17:00"),
        (at(28, 20), at(29, 0), "11月28日 周六 20:00–00:00", "Sat 28 Nov 20:00–00:00"),
    ],
)
def test_spans_read_naturally_in_both_languages(start, end, zh, en):
    assert span_text(start, end, ZONE, TODAY, "zh") == zh
    assert span_text(start, end, ZONE, TODAY, "en") == en


def test_times_are_shown_in_the_centres_zone_not_utc():
    utc = ZoneInfo("UTC")
    start = datetime(2026, 11, 25, 6, 0, tzinfo=utc)  # 14:00 in Hangzhou
    assert span_text(start, start.replace(hour=8), ZONE, TODAY, "zh") == "今天 14:00–16:00"


def test_days_in_another_year_carry_the_year():
    assert day_text(date(2027, 1, 4), TODAY, "zh") == "2027年1月4日 周一"
    assert day_text(date(2027, 1, 4), TODAY, "en") == "Mon 4 Jan 2027"
    assert day_text(date(2026, 11, 24), TODAY, "zh") == "昨天"


def test_a_day_in_a_sentence_is_named_naturally():
    """The no-show block's 'paused until 12月22日' (en: 22 Dec), never 12-22."""
    assert month_day_text(date(2026, 12, 22), "zh") == "12月22日"
    assert month_day_text(date(2026, 12, 22), "en") == "22 Dec"
