"""The district hub (KIOSK_ROLE=hub): receives every centre's events, publishes district
activities, notices and reward lists, and shows the district dashboard. Same app, other role:
its blueprints are registered only when ROLE is "hub"."""

from __future__ import annotations

from kiosk.features import Feature


def feature() -> Feature:
    return Feature(name="hub", setup=_setup)


def _setup(app) -> None:
    if app.config.get("ROLE") != "hub":
        return
    from kiosk.hub import api, cli, rollup, views

    rollup.setup(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(cli.bp)
