"""Access rules for staff pages, shared by every feature's staff blueprint."""

from __future__ import annotations

import time
from functools import wraps

from flask import Blueprint, abort, current_app, request, session
from flask_login import current_user, login_required, logout_user

from kiosk.extensions import login_manager
from kiosk.staff.models import StaffRole

PUBLIC_ENDPOINTS = {"staff.login"}


def mark_active() -> None:
    session["staff_seen"] = int(time.time())


def _idle_too_long() -> bool:
    seen = session.get("staff_seen")
    limit = float(current_app.config["STAFF_IDLE_MINUTES"]) * 60
    return not isinstance(seen, int) or time.time() - seen > limit


def _require_login():
    """Every staff route needs a login, including ones added later and forgotten; a staff
    session unused for STAFF_IDLE_MINUTES ends (the kiosk PC may be left logged in)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if _idle_too_long():
        logout_user()
        session.pop("staff_seen", None)
        return login_manager.unauthorized()
    mark_active()
    return None


def staff_blueprint(name: str, import_name: str, url_prefix: str) -> Blueprint:
    """A blueprint whose every route requires a staff login."""
    if not url_prefix.startswith("/staff"):
        raise ValueError("staff pages live under /staff")
    blueprint = Blueprint(name, import_name, url_prefix=url_prefix)
    blueprint.before_request(_require_login)
    return blueprint


def role_required(role: StaffRole):
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def is_admin() -> bool:
    return bool(current_user.is_authenticated and current_user.has_role(StaffRole.ADMIN))


def client_address() -> str:
    return request.remote_addr or ""
