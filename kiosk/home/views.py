"""The visitor shell: home, attract screen, language, elder mode, end of a visit."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, request, session, url_for

from kiosk.config import SUPPORTED_LOCALES
from kiosk.extensions import db
from kiosk.home.services import current_notices
from kiosk.i18n import _l
from kiosk.web import elder_mode, render

bp = Blueprint("home", __name__)


@dataclass(frozen=True)
class Tile:
    endpoint: str
    title: object
    subtitle: object
    colour: str
    ready: bool


# The four jobs of the kiosk. A tile whose feature has not landed says so (即将开放).
TILES = (
    Tile("checkin.index", _l("Activity check-in"), _l("Scan to check in and earn points"), "red", True),
    Tile("home.booking", _l("Book a service"), _l("Haircut, mending, legal advice…"), "green", False),
    Tile("home.catalogue", _l("Reading hall"), _l("Find a book and where it stands"), "blue", False),
    Tile("points.index", _l("My points"), _l("Balance and rewards"), "purple", True),
)
TILES_BY_ENDPOINT = {tile.endpoint: tile for tile in TILES}


@bp.get("/")
def index():
    # Home ends the task: a scanned card no longer shows anyone's points, and a card scanned
    # from now on opens 我的积分 instead of checking in to the activity last on screen.
    session.pop("member", None)
    session.pop("checkin_activity", None)
    return render("home/page.html", tiles=TILES, notices=current_notices(db.session))


@bp.get("/attract")
def attract():
    return render("home/attract.html")


@bp.get("/booking")
def booking():
    return _coming_soon("home.booking")


@bp.get("/catalogue")
def catalogue():
    return _coming_soon("home.catalogue")


def _coming_soon(endpoint: str):
    return render("home/coming_soon.html", tile=TILES_BY_ENDPOINT[endpoint])


def _back_to_referrer():
    """Back to the page the visitor was on (same site only), else home."""
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if parts.netloc == request.host and parts.path.startswith("/") and not parts.path.startswith("//"):
        return redirect(parts.path + (f"?{parts.query}" if parts.query else ""), code=303)
    return redirect(url_for("home.index"), code=303)


@bp.post("/lang")
def set_language():
    lang = request.form.get("lang", "")
    if lang not in SUPPORTED_LOCALES:
        abort(400)
    session["lang"] = lang
    return _back_to_referrer()


@bp.post("/elder")
def toggle_elder_mode():
    session["elder"] = not elder_mode()
    return _back_to_referrer()


def after_visit_url() -> str:
    """Where a finished task sends the kiosk (DESIGN.md §8): home, or on a kiosk locked to one
    activity that activity's check-in screen, ready for the next person."""
    from kiosk.checkin.services import current_lock

    lock = current_lock(db.session, current_app.config["DEVICE_ID"])
    return url_for("checkin.screen", activity_id=lock.activity_id) if lock is not None else url_for("home.index")


@bp.post("/session/end")
def end_visit():
    """The idle timer (or 返回首页 from a finished task) ends the visit: forget everything."""
    session.clear()
    return "", 204
