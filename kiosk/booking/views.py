from __future__ import annotations

from flask import Blueprint

from kiosk.features import registry
from kiosk.web import render

bp = Blueprint("booking", __name__)


@bp.get("/booking")
def index():
    tile = next(t for t in registry().tiles if t.endpoint == "booking.index")
    return render("home/coming_soon.html", tile=tile)
