"""Sync to the district: the outbox every feature writes to, `kiosk enrol`, `kiosk sync` and
the staff sync page (docs/sync.md)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from kiosk.features import Feature, MenuLink
from kiosk.i18n import _l


def erasure_marker(app: Flask) -> Path:
    """The file `kiosk privacy erase` touches so the kiosk's other processes drop the sealed
    values they keep (kiosk.sync.protocol.watch_erasures)."""
    return Path(app.instance_path) / "sync-erasures"


def _setup(app: Flask) -> None:
    from kiosk.sync import protocol

    protocol.watch_erasures(erasure_marker(app))


def feature() -> Feature:
    from kiosk.sync import cli, views

    return Feature(
        name="sync",
        blueprints=(views.bp, cli.bp),
        menu=(MenuLink("sync.status", _l("District sync"), role="admin"),),
        setup=_setup,
    )
