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
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"), render_as_batch=True, include_object=kiosk_db.include_object)
    htmx.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)

    from kiosk import privacy, security, web

    security.init_app(app)

    privacy.install_log_masking(app)
    web.init_app(app)

    from kiosk.features import install_features

    install_features(app)

    # Import every model so Alembic and create_all see the whole schema.
    import kiosk.models  # noqa: F401

    logging.getLogger("kiosk").setLevel(logging.INFO)
    return app
