"""The district's matrix of centres (1 district + 11 sub-district + N)."""

from __future__ import annotations

from kiosk.features import Feature


def feature() -> Feature:
    from kiosk.centres import demo

    return Feature(name="centres", demo=demo.load)
