"""The visitor shell: home, attract screen, language, elder mode, end of a visit."""

from __future__ import annotations

from kiosk.features import Feature


def feature() -> Feature:
    from kiosk.home import demo, views

    return Feature(name="home", blueprints=(views.bp,), demo=demo.load)
