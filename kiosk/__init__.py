"""Centre Kiosk: the touchscreen terminal of a community service centre (党群服务中心)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

from kiosk.config import PROJECT_ROOT, instance_path_from_env, load_config

__version__ = "0.1.0"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` overrides everything else (tests use it)."""
    config = dict(config or {})
    instance_path = Path(config.pop("INSTANCE_PATH", None) or instance_path_from_env())
    app = Flask(
        __name__,
        instance_path=str(instance_path),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(load_config(instance_path, config))

    from kiosk import db as kiosk_db
    from kiosk.extensions import babel, csrf, db, htmx, limiter, login_manager, migrate, select_locale

    db.init_app(app)
    with app.app_context():
        kiosk_db.configure_sqlite(db.engine)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"), render_as_batch=True)
    htmx.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)

    from kiosk import privacy, security, web

    security.init_app(app)

    privacy.install_log_masking(app)
    web.init_app(app)

    from kiosk.checkin.views import bp as checkin_bp
    from kiosk.checkin.views import phone_bp
    from kiosk.checkin.views import staff_bp as activities_bp
    from kiosk.devices.views import enrol_bp as device_enrol_bp
    from kiosk.devices.views import staff_bp as devices_bp
    from kiosk.home.views import bp as home_bp
    from kiosk.members.views import bp as members_bp
    from kiosk.ops.views import bp as ops_bp
    from kiosk.points.views import bp as points_bp
    from kiosk.points.views import staff_bp as rewards_bp
    from kiosk.scan.views import bp as scan_bp
    from kiosk.staff.views import bp as staff_bp

    for blueprint in (home_bp, scan_bp, ops_bp, points_bp, checkin_bp, phone_bp, staff_bp, members_bp, rewards_bp, activities_bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(devices_bp)
    app.register_blueprint(device_enrol_bp)

    # Scan recognisers register themselves on import.
    import kiosk.checkin.scan
    import kiosk.members.scan

    # Import every model so Alembic and create_all see the whole schema.
    import kiosk.models  # noqa: F401

    logging.getLogger("kiosk").setLevel(logging.INFO)
    return app
