"""The kiosk's scanner: /scan asks every registered recogniser what a code is."""

from __future__ import annotations

from kiosk.features import Feature


def feature() -> Feature:
    from kiosk.scan.views import bp

    return Feature(name="scan", blueprints=(bp,))
