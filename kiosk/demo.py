"""Demo data from real centres and activities of Hangzhou's Xihu District (DESIGN.md §10).

Each feature brings its own demo rows (``Feature.demo``, in ``kiosk/<feature>/demo.py``);
``load_demo`` runs them in feature order. Idempotent: every row has a stable key, so running
`kiosk demo` twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
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
