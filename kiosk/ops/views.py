"""/healthz for a monitor; the staff status (watchdog) page."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from kiosk import __version__
from kiosk.extensions import db
from kiosk.staff.access import role_required, staff_blueprint
from kiosk.staff.models import StaffRole
from kiosk.web import render

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


staff_bp = staff_blueprint("ops_staff", __name__, "/staff/status")


@staff_bp.get("/")
@role_required(StaffRole.ADMIN)
def status():
    """The watchdog page: uptime, last backup, disk, database size, last sync, the doctor's checks."""
    from dataclasses import fields
    from pathlib import Path

    from kiosk.db import utcnow
    from kiosk.ops.services import status_report

    now = utcnow()
    started = current_app.extensions.get("kiosk.started_at", now)
    report = status_report(db.session, current_app.config, Path(current_app.instance_path), now=now, started=started)
    db.session.rollback()  # a read: end it before rendering (nothing was written to commit)
    return render("ops/status.html", **{f.name: getattr(report, f.name) for f in fields(report)}, version=__version__)
