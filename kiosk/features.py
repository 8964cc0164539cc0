"""The one seam a feature plugs into.

Each package in ``FEATURES`` exposes ``feature() -> Feature`` in its ``__init__.py``: what it
adds to the kiosk (blueprints, scan recognisers, staff menu links, a dashboard card, a home
tile, demo rows, the outbox event types it writes, a hook run before each nightly sync).
``create_app`` walks the list once and keeps the result on the app
(``app.extensions["kiosk.features"]``), so two apps in one process never share a registry.
Adding a feature = its own folder and templates, one line below, a migration.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from flask import Blueprint, Flask

    from kiosk.scan.services import Recogniser

# In the order the staff menu, the dashboard and the home screen show them.
FEATURES: tuple[str, ...] = (
    "kiosk.home",
    "kiosk.ops",
    "kiosk.scan",
    "kiosk.checkin",
    "kiosk.booking",
    "kiosk.catalogue",
    "kiosk.members",
    "kiosk.points",
    "kiosk.devices",
    "kiosk.staff",
    "kiosk.centres",
    "kiosk.sync",
    "kiosk.hub",
)

EXTENSION_KEY = "kiosk.features"


@dataclass(frozen=True)
class MenuLink:
    """A link in the staff menu (and on the feature's dashboard card)."""

    endpoint: str
    label: Any  # a lazy string
    role: str = "staff"  # the least role that sees it (StaffRole value)
    in_menu: bool = True  # False: on the dashboard card only


@dataclass(frozen=True)
class Figure:
    """One of today's figures on a dashboard card (e.g. 今日签到 · 23 人次)."""

    label: Any
    value: int | str
    endpoint: str | None = None  # where tapping the figure leads


@dataclass(frozen=True)
class DashboardCard:
    title: Any
    links: tuple[MenuLink, ...] = ()
    # Today's figures, computed by the feature's services: (session, figures context) → figures.
    figures: Callable[[Session, FigureContext], Sequence[Figure]] | None = None
    role: str = "staff"


@dataclass(frozen=True)
class FigureContext:
    """What a dashboard card needs besides the session (plain values: no Flask)."""

    now: datetime
    zone: ZoneInfo
    config: Mapping[str, Any]


@dataclass(frozen=True)
class HomeTile:
    endpoint: str
    title: Any
    subtitle: Any
    colour: str
    ready: bool = True
    url_values: Mapping[str, Any] = field(default_factory=dict)


# Demo rows: (session, zone) → a summary of what was added (for `kiosk demo`). Must be
# idempotent: `kiosk demo` may run on every `make run`.
DemoLoader = Callable[[Session, ZoneInfo], Mapping[str, int] | None]


@dataclass(frozen=True)
class Feature:
    name: str
    blueprints: tuple[Blueprint, ...] = ()
    recognisers: tuple[Recogniser, ...] = ()
    menu: tuple[MenuLink, ...] = ()
    dashboard: DashboardCard | None = None
    tile: HomeTile | None = None
    demo: DemoLoader | None = None
    # Outbox event types this feature writes (the sync feature and its tests read these).
    event_types: tuple[str, ...] = ()
    # Extra app setup (Jinja filters, login loaders…), run once after the blueprints.
    setup: Callable[[Flask], None] | None = None
    # Called by `kiosk sync` (the nightly timer and the staff page's "sync now") before it pushes,
    # inside the sync lock and an app context: a feature writes its nightly outbox events here
    # (daily counts…), each in its own write_transaction, and must be idempotent (a second run
    # the same night writes nothing). A hook that raises is reported; the push still runs.
    before_sync: Callable[[Session], None] | None = None


class FeatureRegistry:
    """What the registered features added, in feature order."""

    def __init__(self, features: Sequence[Feature]):
        names = [f.name for f in features]
        if len(set(names)) != len(names):
            raise ValueError(f"feature registered twice: {names}")
        self.features = tuple(features)
        kinds = [r.kind for f in features for r in f.recognisers]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"scan recogniser kind registered twice: {kinds}")
        # Highest priority first; equal priorities keep feature order (sorted is stable).
        self.recognisers: tuple[Recogniser, ...] = tuple(sorted((r for f in features for r in f.recognisers), key=lambda r: -r.priority))
        self.tiles = tuple(f.tile for f in features if f.tile is not None)
        self.cards = tuple(f.dashboard for f in features if f.dashboard is not None)
        self.menu = tuple(link for f in features for link in f.menu if link.in_menu)
        self.demo_loaders = tuple((f.name, f.demo) for f in features if f.demo is not None)
        self.before_sync = tuple((f.name, f.before_sync) for f in features if f.before_sync is not None)
        event_types = [t for f in features for t in f.event_types]
        if len(set(event_types)) != len(event_types):
            raise ValueError(f"outbox event type declared twice: {event_types}")
        self.event_types = frozenset(event_types)

    def recogniser(self, kind: str) -> Recogniser:
        return next(r for r in self.recognisers if r.kind == kind)


def load_features(names: Sequence[str] = FEATURES) -> list[Feature]:
    return [importlib.import_module(name).feature() for name in names]


def install_features(app: Flask, names: Sequence[str] = FEATURES) -> FeatureRegistry:
    registry = FeatureRegistry(load_features(names))
    for feature in registry.features:
        for blueprint in feature.blueprints:
            app.register_blueprint(blueprint)
        if feature.setup is not None:
            feature.setup(app)
    app.extensions[EXTENSION_KEY] = registry
    return registry


def registry(app: Flask | None = None) -> FeatureRegistry:
    """The current app's registry (views and templates)."""
    if app is None:
        from flask import current_app

        app = current_app._get_current_object()  # type: ignore[attr-defined]
    return app.extensions[EXTENSION_KEY]
