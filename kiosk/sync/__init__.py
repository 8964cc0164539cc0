"""Sync to the district: the outbox every feature writes to, `kiosk enrol`, `kiosk sync` and
the staff sync page (docs/sync.md)."""

from __future__ import annotations

from kiosk.features import Feature, MenuLink
from kiosk.i18n import _l


def feature() -> Feature:
    from kiosk.sync import cli, views

    return Feature(
        name="sync",
        blueprints=(views.bp, cli.bp),
        menu=(MenuLink("sync.status", _l("District sync"), role="admin"),),
    )
