from __future__ import annotations

from flask import Blueprint, request, session

from kiosk.identify.services import PhoneError, parse_phone
from kiosk.privacy import mask_phone
from kiosk.web import render

bp = Blueprint("identify", __name__, url_prefix="/visitor")

VISITOR_KEY = "visitor"


@bp.post("/phone")
def phone():
    """The on-screen keypad posts here. Only the masked number is kept in the visitor session:
    the cookie never carries a whole phone number."""
    try:
        number = parse_phone(request.form.get("phone"))
    except PhoneError as error:
        return render("identify/_phone_error.html", "identify/_phone_error.html", status=error.status, error=error)
    session[VISITOR_KEY] = {"phone_masked": mask_phone(number)}
    return render("identify/_phone_ok.html", "identify/_phone_ok.html", phone_masked=mask_phone(number))
