"""Natural dates and times for visitor pages (DESIGN.md §8): 11月28日 周六 14:00–16:00, 今天,
全天, 跨夜 — never ISO strings. Plain functions (no Flask); the Jinja filters in kiosk.web pass
the visitor's locale, the centre's zone and today's date.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_ZH_WEEKDAYS = "一二三四五六日"
_EN_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WORDS = {
    "zh": {"today": "今天", "tomorrow": "明天", "yesterday": "昨天", "all_day": "全天", "next_day": "次日", "overnight": "跨夜"},
    "en": {"today": "Today", "tomorrow": "Tomorrow", "yesterday": "Yesterday", "all_day": "all day", "next_day": "next day", "overnight": "overnight"},
}


def _lang(locale: str | None) -> str:
    return "en" if str(locale or "").startswith("en") else "zh"


def day_text(day: date, today: date, locale: str | None = "zh") -> str:
    """今天 / 明天 / 昨天, else 11月28日 周六 (en: Today, Sat 28 Nov)."""
    lang = _lang(locale)
    words = _WORDS[lang]
    offset = (day - today).days
    if offset in (-1, 0, 1):
        return words[{-1: "yesterday", 0: "today", 1: "tomorrow"}[offset]]
    if lang == "zh":
        text = f"{day.month}月{day.day}日 周{_ZH_WEEKDAYS[day.weekday()]}"
        return f"{day.year}年{text}" if day.year != today.year else text
    text = f"{_EN_WEEKDAYS[day.weekday()]} {day.day} {_EN_MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if day.year != today.year else text


def month_day_text(day: date, locale: str | None = "zh") -> str:
    """12月22日 (en: 22 Dec): a day named in a sentence, e.g. until when something lasts."""
    if _lang(locale) == "zh":
        return f"{day.month}月{day.day}日"
    return f"{day.day} {_EN_MONTHS[day.month - 1]}"


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def span_text(start: datetime, end: datetime, zone: ZoneInfo, today: date, locale: str | None = "zh") -> str:
    """When an activity (or a session of it) runs, in the centre's zone:

    今天 14:00–16:00 · 11月28日 周六 全天 · 今天 22:00–次日 02:00（跨夜） · 11月28日 周六 09:00 – 11月30日 周一 17:00
    (en: Today 14:00–16:00 · Sat 28 Nov, all day · Today 22:00–02:00 next day (overnight)).
    """
    lang = _lang(locale)
    words = _WORDS[lang]
    start, end = start.astimezone(zone), end.astimezone(zone)
    first = day_text(start.date(), today, lang)
    last_minute = (end - timedelta(minutes=1)).date()
    if start.time() == time(0, 0) and end - start >= timedelta(hours=23, minutes=59) and last_minute == start.date():
        return f"{first} {words['all_day']}" if lang == "zh" else f"{first}, {words['all_day']}"
    if end.date() == start.date() or (end.time() == time(0, 0) and last_minute == start.date()):
        return f"{first} {_clock(start)}–{_clock(end)}"
    if end.date() == start.date() + timedelta(days=1):
        if lang == "zh":
            return f"{first} {_clock(start)}–{words['next_day']} {_clock(end)}（{words['overnight']}）"
        return f"{first} {_clock(start)}–{_clock(end)} {words['next_day']} ({words['overnight']})"
    return f"{first} {_clock(start)} – {day_text(end.date(), today, lang)} {_clock(end)}"
