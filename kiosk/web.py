"""Rendering for full pages and htmx fragments, error pages, security headers.

render() is the one place that decides between a whole page and a fragment:
- an htmx request for a fragment gets the fragment template;
- an htmx request aimed at #main (tile navigation) gets the page in the bare layout;
- anything else gets the page in the full layout.
It always sets ``Vary: HX-Request`` so a cache never serves one for the other.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, current_app, make_response, render_template, request, session
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from kiosk import __version__
from kiosk.errors import KioskError
from kiosk.extensions import db

log = logging.getLogger("kiosk.web")

FULL_LAYOUT = "base.html"
BARE_LAYOUT = "_fragment_layout.html"
MAIN_TARGET = "main"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def _is_htmx() -> bool:
    return bool(getattr(request, "htmx", False))


def render(page: str, fragment: str | None = None, /, *, status: int = 200, **context: Any) -> Response:
    if _is_htmx() and fragment is not None:
        body = render_template(fragment, **context)
    else:
        bare = _is_htmx() and request.htmx.target == MAIN_TARGET and not request.htmx.boosted
        body = render_template(page, layout=BARE_LAYOUT if bare else FULL_LAYOUT, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def elder_mode() -> bool:
    return bool(session.get("elder", current_app.config["ELDER_MODE_DEFAULT"]))


def local_now() -> datetime:
    return datetime.now(ZoneInfo(current_app.config["TIMEZONE"]))


def natural_span(start: datetime, end: datetime) -> str:
    """今天 14:00–16:00, 11月28日 周六 全天 … in the visitor's language (kiosk.timefmt)."""
    from kiosk import timefmt

    return timefmt.span_text(start, end, ZoneInfo(current_app.config["TIMEZONE"]), local_now().date(), str(get_locale() or "zh"))


def natural_day(moment: datetime) -> str:
    """今天, 昨天, 11月28日 周六 for a stored (UTC) moment."""
    from kiosk import timefmt

    zone = ZoneInfo(current_app.config["TIMEZONE"])
    return timefmt.day_text(moment.astimezone(zone).date(), local_now().date(), str(get_locale() or "zh"))


def _template_context() -> dict[str, Any]:
    locale = str(get_locale() or current_app.config["DEFAULT_LOCALE"])
    now = local_now()
    return {
        "layout": FULL_LAYOUT,
        "centre_name": current_app.config["CENTRE_NAME"],
        "centre_code": current_app.config["CENTRE_CODE"],
        "app_version": __version__,
        "locale": locale,
        "html_lang": "zh-CN" if locale == "zh" else locale,
        "elder_mode": elder_mode(),
        "idle_seconds": current_app.config["IDLE_SECONDS"],
        "idle_grace_seconds": current_app.config["IDLE_GRACE_SECONDS"],
        "today_text": format_date(now.date(), format="full"),
        "clock_text": now.strftime("%H:%M"),
        "timezone": current_app.config["TIMEZONE"],
    }


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":
        # Visitor pages may show masked personal data: never keep them in a cache.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def error_response(status: int, title: str, message: str) -> Response:
    return render("errors/page.html", "errors/_message.html", status=status, status_code=status, title=title, message=message)


def _handle_http_error(error: HTTPException) -> Response:
    status = error.code or 500
    titles = {
        400: (_("Something was wrong with that request"), _("Please go back to the home screen and try again.")),
        403: (_("Not allowed"), _("This page is for centre staff only.")),
        404: (_("Page not found"), _("The page you tapped does not exist. Please go back to the home screen.")),
        405: (_("Not allowed"), _("Please go back to the home screen and try again.")),
        413: (_("Too much data"), _("Please go back to the home screen and try again.")),
        429: (_("Too many attempts"), _("Please wait a minute and try again.")),
    }
    title, message = titles.get(status, (_("Something went wrong"), _("Please go back to the home screen and try again.")))
    return error_response(status, title, message)


def _handle_csrf_error(error: CSRFError) -> Response:
    log.info("CSRF refused on %s: %s", request.path, error.description)
    return error_response(400, _("This page has expired"), _("Please go back to the home screen and try again."))


def _handle_unexpected(error: Exception) -> Response:
    log.exception("Unhandled error on %s %s", request.method, request.path)
    return error_response(500, _("Something went wrong"), _("Sorry, the kiosk hit a problem. Please go back to the home screen or ask the staff at the desk."))


def init_app(app: Flask) -> None:
    from kiosk.privacy import mask_name, mask_phone

    app.jinja_env.filters["mask_phone"] = mask_phone
    app.jinja_env.filters["mask_name"] = mask_name
    app.jinja_env.filters["natural_day"] = natural_day
    app.context_processor(_template_context)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _handle_csrf_error)
    app.register_error_handler(HTTPException, _handle_http_error)
    app.register_error_handler(Exception, _handle_unexpected)


# ---- staff forms and exports, shared by the features ----


def show_error(form, error) -> None:
    """Put a service's refusal next to the field it names, or at the top of the form."""
    field = getattr(form, error.field, None) if getattr(error, "field", None) else None
    (field.errors if field is not None else form.form_errors).append(str(error.message))


def submit_form(form, save: Callable[[], Any]) -> tuple[Any, int]:
    """Validate ``form`` and run ``save``; commit on success.

    Returns (what save returned, 200), or (None, status): 200 for a GET, 400 for a POST that
    failed validation (a missing CSRF token, a bad choice), or the refusal's own status with
    its message on the form and nothing written.
    """
    if not form.validate_on_submit():
        return None, 400 if request.method == "POST" else 200
    try:
        result = save()
    except KioskError as error:
        db.session.rollback()
        show_error(form, error)
        return None, error.status
    db.session.commit()
    return result, 200


def csv_download(rows: list[list], filename: str) -> Response:
    buffer = io.StringIO()
    buffer.write("\ufeff")  # Excel, as used in the centres, reads UTF-8 CSV only with a BOM
    csv.writer(buffer).writerows(rows)
    response = make_response(buffer.getvalue().encode("utf-8"))
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    return response


def xlsx_download(rows: list[list], filename: str, sheet_title: str = "data") -> Response:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = sheet_title
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = make_response(buffer.getvalue())
    response.headers["Content-Type"] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    return response
