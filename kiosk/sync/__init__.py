"""Sync to the district: the outbox every feature writes to (sending it comes with the sync issue)."""

from __future__ import annotations

from kiosk.features import Feature


def feature() -> Feature:
    return Feature(name="sync")
