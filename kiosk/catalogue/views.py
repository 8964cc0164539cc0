from __future__ import annotations

from kiosk.devices.access import kiosk_blueprint
from kiosk.features import registry
from kiosk.web import render

bp = kiosk_blueprint("catalogue", __name__)


@bp.get("/catalogue")
def index():
    tile = next(t for t in registry().tiles if t.endpoint == "catalogue.index")
    return render("home/coming_soon.html", tile=tile)
