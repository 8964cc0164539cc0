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


def trim_request_hooks(app) -> None:
    """Take per-request work off the requests that do not need it (issue 9).

    - Flask-Limiter checks every request in a before_request hook for application, default or
      blueprint limits. The kiosk has none: its limits are decorators on two views, which check
      themselves. The hook stays but returns at once unless such limits appear.
    - Flask-Login looks into the session after every request (for its remember cookie), which
      marks the response ``Vary: Cookie``; on a static file that makes the browser's cache miss
      whenever the visitor session changes. Static files skip it (no one logs in through one).
    """
    from flask import request

    hooks = app.before_request_funcs.get(None, [])
    for index, hook in enumerate(hooks):
        if getattr(hook, "__func__", None) is Limiter._check_request_limit and hook.__self__ is limiter:
            manager = limiter.limit_manager

            def check_app_wide_limits(check=hook, manager=manager):
                if manager._application_limits or manager._default_limits or manager._blueprint_limits or limiter._meta_limits:
                    return check()
                return None

            hooks[index] = check_app_wide_limits
    after = app.after_request_funcs.get(None, [])
    for index, hook in enumerate(after):
        if getattr(hook, "__func__", None) is LoginManager._update_remember_cookie:

            def update_remember_cookie(response, update=hook):
                return response if request.endpoint == "static" else update(response)

            after[index] = update_remember_cookie
