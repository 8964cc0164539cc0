"""The staff sync page: last success, pending events, last error, and "sync now"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flask import current_app, flash, redirect, url_for
from flask_babel import gettext as _

from kiosk.extensions import db
from kiosk.staff.access import role_required, staff_blueprint
from kiosk.staff.forms import ConfirmForm
from kiosk.staff.models import StaffRole
from kiosk.sync import services
from kiosk.sync.cli import sync_running
from kiosk.web import render

bp = staff_blueprint("sync", __name__, "/staff/sync")


@bp.get("/")
@role_required(StaffRole.ADMIN)
def status():
    state = services.sync_status(db.session)
    pending = services.pending_count(db.session)
    db.session.rollback()  # end the read (it wrote nothing)
    running = sync_running(Path(current_app.instance_path))
    return render("sync/status.html", state=state, pending=pending, running=running, form=ConfirmForm())


@bp.post("/now")
@role_required(StaffRole.ADMIN)
def sync_now():
    """Starts `kiosk sync` as its own process (the kiosk keeps serving; the lock keeps a
    second run from starting)."""
    form = ConfirmForm()
    if form.validate_on_submit():
        if sync_running(Path(current_app.instance_path)):
            flash(_("A sync is already running."), "info")
        else:
            env = dict(os.environ, KIOSK_INSTANCE_PATH=current_app.instance_path)
            subprocess.Popen(
                [sys.executable, "-m", "kiosk.cli", "sync", "--quiet", "--budget", "120"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            flash(_("Sync started. Reload this page in a minute to see the result."), "info")
    return redirect(url_for("sync.status"))
