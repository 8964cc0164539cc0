"""The visitor shell: home, attract screen, language, elder mode, end of a visit."""

from __future__ import annotations

import secrets
import threading
from urllib.parse import urlsplit

from flask import Response, abort, current_app, make_response, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from markupsafe import Markup

from kiosk.config import SUPPORTED_LOCALES
from kiosk.devices.access import kiosk_blueprint
from kiosk.extensions import db
from kiosk.features import registry
from kiosk.home.services import current_notices
from kiosk.web import BARE_LAYOUT, FULL_LAYOUT, MAIN_TARGET, csrf_token, elder_mode, local_now, render, today_text

bp = kiosk_blueprint("home", __name__)


@bp.get("/")
def index():
    # Home ends the task: a scanned card no longer shows anyone's points, and a card scanned
    # from now on opens 我的积分 instead of checking in to the activity last on screen.
    session.pop("member", None)
    session.pop("checkin_activity", None)
    return home_page()


PAGE_KEY = "kiosk.home.page"
# Stands for the CSRF token in a cached page (a per-process random word no page can contain).
CSRF_SLOT = f"csrf-slot-{secrets.token_hex(16)}"


def home_page() -> Response:
    """The home page, rendered once per language, elder mode, layout, minute and notices.

    Home is the page of every tap on 返回首页 and of every finished task. Everything on it is
    the same for every visitor of the kiosk in that minute: the shell (centre, date, clock to
    the minute, language and elder mode), the tiles and the cached notices; only the CSRF
    token of the visitor's session differs. So the page is rendered with a placeholder for the
    token and kept; a tap fills in the token. The key holds everything the templates read
    (the notices themselves, so a changed notice renders anew), and a new minute or day is a
    new key (the cache keeps the last few)."""
    notices = tuple(current_notices(db.session))
    config = current_app.config
    locale = str(get_locale() or config["DEFAULT_LOCALE"])
    now = local_now()
    htmx = getattr(request, "htmx", None)
    bare = bool(htmx) and htmx.target == MAIN_TARGET and not htmx.boosted
    clock = now.strftime("%H:%M")
    key = (locale, elder_mode(), bare, request.script_root, now.date(), clock, notices)
    pages = current_app.extensions.setdefault(PAGE_KEY, {})
    body = pages.get(key)
    if body is None:
        body = render_template(
            "home/page.html",
            layout=BARE_LAYOUT if bare else FULL_LAYOUT,
            tiles_html=tiles_html(),
            notices=notices,
            today_text=today_text(locale, now.date()),
            clock_text=clock,
            csrf_token=lambda: CSRF_SLOT,
        )
        if len(pages) >= 16:
            pages.clear()
        pages[key] = body
    if CSRF_SLOT in body:
        body = body.replace(CSRF_SLOT, csrf_token())
    response = make_response(body)
    response.vary.add("HX-Request")
    return response


TILES_KEY = "kiosk.home.tiles"
_tiles_lock = threading.Lock()


def tiles_html() -> Markup:
    """The service tiles, rendered once per language (and script root) per process.

    What a tile shows comes from the feature registry alone (kiosk.features.HomeTile: title,
    subtitle, colour, URL, "coming soon"), which is fixed when the app is built; nothing staff
    edit is on a tile. So the lazy titles are translated and the URLs built once, not on every
    tap. A tile that ever shows live data must leave this cache (or drop it when the data
    changes). A new registry (another app, a test installing features) starts a new cache."""
    tiles = registry().tiles
    key = (str(get_locale() or current_app.config["DEFAULT_LOCALE"]), request.script_root)
    cached = current_app.extensions.get(TILES_KEY)
    if cached is None or cached[0] is not tiles:
        with _tiles_lock:
            cached = current_app.extensions[TILES_KEY] = (tiles, {})
    html = cached[1].get(key)
    if html is None:
        html = cached[1][key] = Markup(render_template("home/_tiles.html", tiles=tiles))
    return html


@bp.get("/attract")
def attract():
    return render("home/attract.html")


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
