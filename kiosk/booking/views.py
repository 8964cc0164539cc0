from __future__ import annotations

from kiosk.devices.access import kiosk_blueprint
from kiosk.features import registry
from kiosk.web import render

bp = kiosk_blueprint("booking", __name__)


@bp.get("/booking")
def index():
    tile = next(t for t in registry().tiles if t.endpoint == "booking.index")
    return render("home/coming_soon.html", tile=tile)
