"""/healthz for a monitor; the staff status (watchdog) page."""

from __future__ import annotations

import logging
import shutil

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
    from pathlib import Path

    from kiosk.db import utcnow
    from kiosk.ops import backup, doctor
    from kiosk.sync.models import SyncState

    now = utcnow()
    instance = Path(current_app.instance_path)
    started = current_app.extensions.get("kiosk.started_at", now)
    checks = doctor.run_checks(doctor.Context(current_app.config, instance, db.session, now, timeout=2.0))
    state = db.session.get(SyncState, 1)
    db.session.commit()
    usage = shutil.disk_usage(instance)
    return render(
        "ops/status.html",
        checks=checks,
        failed=sum(1 for c in checks if c.failed),
        started=started,
        uptime=now - started,
        last_backup=backup.last_backup(instance),
        disk_free_mb=usage.free // (1024 * 1024),
        disk_total_mb=usage.total // (1024 * 1024),
        database_mb=round(doctor.database_size(current_app.config) / (1024 * 1024), 1),
        sync_state=state,
        version=__version__,
    )
