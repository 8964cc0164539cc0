from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from kiosk import __version__
from kiosk.extensions import db

bp = Blueprint("ops", __name__)
log = logging.getLogger("kiosk.ops")


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # report, don't crash: this is what a monitor polls when things are bad
        log.exception("health check: database unreachable")
        database = "unreachable"
    from kiosk.security import configuration_problems

    missing = configuration_problems(current_app.config)
    healthy = database == "ok" and not missing
    body = {
        "status": "ok" if healthy else "degraded",
        "database": database,
        "version": __version__,
        "centre": current_app.config["CENTRE_CODE"],
        "role": current_app.config["ROLE"],
    }
    if missing:  # e.g. instance/kiosk.toml lost: every scan would fail
        body["configuration"] = "incomplete: " + ", ".join(missing)
    return jsonify(body), 200 if healthy else 503
