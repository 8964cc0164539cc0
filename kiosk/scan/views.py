from __future__ import annotations

from flask import current_app, request, session

from kiosk.devices.access import kiosk_blueprint
from kiosk.errors import KioskError
from kiosk.extensions import db
from kiosk.scan.services import ScanContext, recognise
from kiosk.web import render

bp = kiosk_blueprint("scan", __name__)


@bp.post("/scan")
def scan():
    try:
        outcome = recognise(db.session, request.form.get("code"), ScanContext(current_app.config, dict(session)))
    except KioskError as error:
        return render("scan/_result.html", "scan/_result.html", status=error.status, error=error)
    # A new card replaces whoever was identified before (one visitor at a time).
    session.update(outcome.visitor)
    response = render("scan/_result.html", "scan/_result.html", outcome=outcome)
    if outcome.redirect_to:
        response.headers["HX-Location"] = outcome.redirect_to
    return response
