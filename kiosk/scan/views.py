from __future__ import annotations

from flask import current_app, request, session, url_for

from kiosk.devices.access import kiosk_blueprint
from kiosk.errors import KioskError
from kiosk.extensions import db
from kiosk.features import registry
from kiosk.scan.services import ScanContext, recognise
from kiosk.web import render

bp = kiosk_blueprint("scan", __name__)


@bp.post("/scan")
def scan():
    try:
        recogniser, outcome = recognise(db.session, request.form.get("code"), ScanContext(current_app.config, dict(session)), registry().recognisers)
    except KioskError as error:
        return render("scan/_result.html", "scan/_result.html", status=error.status, error=error)
    # A new card replaces whoever was identified before (one visitor at a time).
    session.update(outcome.visitor)
    response = render("scan/_result.html", "scan/_result.html", outcome=outcome)
    endpoint = outcome.endpoint or recogniser.endpoint
    if endpoint is not None and outcome.url_values is not None:
        response.headers["HX-Location"] = url_for(endpoint, **outcome.url_values)
    return response
