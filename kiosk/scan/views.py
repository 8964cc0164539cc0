from __future__ import annotations

from flask import Blueprint, current_app, request

from kiosk.extensions import db
from kiosk.scan.services import ScanError, recognise
from kiosk.web import render

bp = Blueprint("scan", __name__)


@bp.post("/scan")
def scan():
    try:
        outcome = recognise(db.session, request.form.get("code"), max_length=current_app.config["MAX_SCAN_LENGTH"])
    except ScanError as error:
        return render("scan/_result.html", "scan/_result.html", status=error.status, error=error)
    response = render("scan/_result.html", "scan/_result.html", outcome=outcome)
    if outcome.redirect_to:
        response.headers["HX-Location"] = outcome.redirect_to
    return response
