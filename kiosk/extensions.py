"""Flask extensions, created once and bound to the app in create_app()."""

from __future__ import annotations

from flask import has_request_context, request, session
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx

from kiosk.config import SUPPORTED_LOCALES
from kiosk.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
htmx = Htmx()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def select_locale() -> str:
    """The visitor's choice for this visit, else the kiosk's default (Chinese)."""
    from flask import current_app

    chosen = session.get("lang") if has_request_context() else None
    if chosen in SUPPORTED_LOCALES:
        return chosen
    if has_request_context() and request.blueprint == "phone":
        # A visitor's own phone says which language it reads (the kiosk itself starts in Chinese).
        return request.accept_languages.best_match(SUPPORTED_LOCALES) or current_app.config["DEFAULT_LOCALE"]
    return current_app.config["DEFAULT_LOCALE"]


babel = Babel()
