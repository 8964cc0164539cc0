"""Operations: the health check a monitor polls."""

from __future__ import annotations

from kiosk.features import Feature


def feature() -> Feature:
    from kiosk.ops import views

    return Feature(name="ops", blueprints=(views.bp,))
