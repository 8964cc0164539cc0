"""Demo data from real centres and activities of Hangzhou's Xihu District (DESIGN.md §10).

Each feature brings its own demo rows (``Feature.demo``, in ``kiosk/<feature>/demo.py``);
``load_demo`` runs them in feature order. Idempotent: every row has a stable key, so running
`kiosk demo` twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from kiosk.features import DemoLoader, load_features


def load_demo(session: Session, zone: ZoneInfo | None = None, loaders: Sequence[tuple[str, DemoLoader]] | None = None) -> dict[str, int]:
    """Load every feature's demo rows; returns what each added, summed by key."""
    zone = zone or ZoneInfo("Asia/Shanghai")
    if loaders is None:
        loaders = [(f.name, f.demo) for f in load_features() if f.demo is not None]
    summary: dict[str, int] = {}
    for _name, load in loaders:
        for key, value in (load(session, zone) or {}).items():
            summary[key] = summary.get(key, 0) + value
    return summary


def next_weekday(today: date, weekday: int) -> date:
    """The next such weekday after today (Monday 0): the demo's "this Saturday" (a week on, when
    the demo is loaded on a Saturday). Activities and the notices that announce them share it."""
    return today + timedelta(days=(weekday - today.weekday()) % 7 or 7)


def day_words(day: date) -> str:
    """12月5日 周六: a demo notice names its day as it was when the demo was loaded (a notice is
    stored text, so never 今天 or 本周六, which would be wrong the next day)."""
    return f"{day.month}月{day.day}日 周{'一二三四五六日'[day.weekday()]}"
