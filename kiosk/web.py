"""Rendering for full pages and htmx fragments, error pages, security headers.

render() is the one place that decides between a whole page and a fragment:
- an htmx request for a fragment gets the fragment template;
- an htmx request aimed at #main (tile navigation) gets the page in the bare layout;
- anything else gets the page in the full layout.
It always sets ``Vary: HX-Request`` so a cache never serves one for the other.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import secrets
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, current_app, g, has_request_context, make_response, render_template, request, send_file, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import format_date, get_locale, get_translations
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer
from itsdangerous.timed import TimestampSigner
from jinja2.ext import _make_new_gettext, _make_new_ngettext
from markupsafe import escape
from werkzeug.exceptions import HTTPException
from werkzeug.security import safe_join

from kiosk import __version__
from kiosk.errors import KioskError
from kiosk.extensions import trim_request_hooks

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


# ---- prebuilt pages: rendered once, a few values filled in per request ----

PREBUILT = "kiosk_prebuilt"
# Stand-ins for the variable parts of a prebuilt page: per-process random 18-digit numbers, so
# one can stand for a number (``%(n)d``) as well as for text, and no page contains one by chance.
_SLOT_BASE = 10**17 * 7 + secrets.randbelow(10**16) * 10


def slot(index: int) -> int:
    """The stand-in for variable part ``index`` (0-8) of a prebuilt page."""
    return _SLOT_BASE + index


_CSRF_SLOT = str(slot(9))


def prebuilt(page: str, variant: tuple, context: dict[str, Any], values: dict[int, str]) -> Response:
    """``render(page, **context)`` for a page the same for every visitor but for a few values.

    The page is rendered once per variant (what the caller's template branches on), language,
    elder mode, layout and the configuration it shows, with ``slot(i)`` standing for each
    variable part in ``context`` and a stand-in for the CSRF token; a request then fills in
    ``values`` (slot index -> text, escaped here) and its own CSRF token (only if the page has
    one). A page that reads anything else per request must not be prebuilt.
    """
    config = current_app.config
    locale = str(get_locale() or config["DEFAULT_LOCALE"])
    bare = _is_htmx() and request.htmx.target == MAIN_TARGET and not request.htmx.boosted
    key = (page, variant, locale, elder_mode(), bare, request.script_root, config["CENTRE_NAME"], config["IDLE_GRACE_SECONDS"], config["TIMEZONE"])
    pages = current_app.extensions.setdefault(PREBUILT, {})
    parts = pages.get(key)
    if parts is None:
        body = render_template(page, **context, layout=BARE_LAYOUT if bare else FULL_LAYOUT, csrf_token=lambda: _CSRF_SLOT)
        stand_ins = {str(slot(i)): i for i in range(10)}
        pieces = re.split(f"({'|'.join(stand_ins)})", body)
        # Literal text at even positions, a slot's index at odd ones.
        parts = [piece if position % 2 == 0 else stand_ins[piece] for position, piece in enumerate(pieces)]
        if len(pages) >= 64:
            pages.clear()
        pages[key] = parts
    filled = {index: str(escape(value)) for index, value in values.items()}
    if 9 in parts:
        filled[9] = csrf_token()
    response = make_response("".join(part if isinstance(part, str) else filled[part] for part in parts))
    response.vary.add("HX-Request")
    return response


def elder_mode() -> bool:
    return bool(session.get("elder", current_app.config["ELDER_MODE_DEFAULT"]))


def local_now() -> datetime:
    return datetime.now(ZoneInfo(current_app.config["TIMEZONE"]))


_DATES: dict[tuple[str, object], str] = {}


def today_text(locale: str, day) -> str:
    """The long date in the top bar ("2026年11月28日星期六"): Babel formats it once a day."""
    key = (locale, day)
    text = _DATES.get(key)
    if text is None:
        if len(_DATES) > 16:
            _DATES.clear()
        text = _DATES[key] = format_date(day, format="full")
    return text


def natural_span(start: datetime, end: datetime) -> str:
    """今天 14:00–16:00, 11月28日 周六 全天 … in the visitor's language (kiosk.timefmt)."""
    from kiosk import timefmt

    return timefmt.span_text(start, end, ZoneInfo(current_app.config["TIMEZONE"]), local_now().date(), str(get_locale() or "zh"))


def natural_day(moment: datetime) -> str:
    """今天, 昨天, 11月28日 周六 for a stored (UTC) moment."""
    from kiosk import timefmt

    zone = ZoneInfo(current_app.config["TIMEZONE"])
    return timefmt.day_text(moment.astimezone(zone).date(), local_now().date(), str(get_locale() or "zh"))


def natural_moment(moment: datetime | None) -> str:
    """今天 14:05, 11月28日 周六 09:30 (en: Sat 28 Nov 09:30) for a stored (UTC) moment."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(current_app.config["TIMEZONE"]))
    return f"{natural_date(local.date())} {local.strftime('%H:%M')}"


def natural_date(day: date | None) -> str:
    """今天, 明天, 12月5日 周六 for a calendar date (a due date, a booking day)."""
    from kiosk import timefmt

    return timefmt.day_text(day, local_now().date(), str(get_locale() or "zh")) if day is not None else ""


def _template_context() -> dict[str, Any]:
    config = current_app.config
    locale = str(get_locale() or config["DEFAULT_LOCALE"])
    now = local_now()
    # The request's catalogue, looked up once: templates' _() would otherwise ask Flask-Babel
    # for the request's locale and translations on every string (imported macros still do).
    translations = get_translations()
    return {
        "layout": FULL_LAYOUT,
        "centre_name": config["CENTRE_NAME"],
        "centre_code": config["CENTRE_CODE"],
        "app_version": __version__,
        "locale": locale,
        "html_lang": "zh-CN" if locale == "zh" else locale,
        "elder_mode": elder_mode(),
        "idle_seconds": config["IDLE_SECONDS"],
        "idle_grace_seconds": config["IDLE_GRACE_SECONDS"],
        "today_text": today_text(locale, now.date()),
        "clock_text": now.strftime("%H:%M"),
        "timezone": config["TIMEZONE"],
        # Made (and the session touched) only if the page asks; once per request (kept in g).
        "csrf_token": csrf_token,
        "gettext": _make_new_gettext(translations.ugettext),
        "ngettext": _make_new_ngettext(translations.ungettext),
    }


def _lazy_user_context() -> dict[str, Any]:
    """Flask-Login's template context, lazily: its own processor loads the user on every render,
    and on a visitor's page that runs its session protection, which rewrites the session cookie
    (``_fresh``) on a phone's first check-in. Staff templates still get the user when they ask."""
    from flask_login import current_user

    return {"current_user": current_user}


def _lazy_current_user(app: Flask) -> None:
    from flask_login.utils import _user_context_processor

    processors = app.template_context_processors.get(None, [])
    for index, processor in enumerate(processors):
        if processor is _user_context_processor:
            processors[index] = _lazy_user_context


# ---- the CSRF token of a page ----

# The dicts below (_DERIVED_KEYS, _CSRF_SERIALIZERS, _CSRF_TOKENS) are read and filled by
# waitress's threads without a lock, on purpose: each get, set and clear is one dict operation
# (atomic under the GIL), and a value is as good whichever thread computes it (the same derived
# key or serializer; a CSRF token signed a second later, whose timestamp validation without a
# time limit ignores). Two threads missing at once compute it twice, or a clear drops a value
# just set: a computation more, never a wrong key or token.
_DERIVED_KEYS: dict[tuple, bytes] = {}


class _KeptKeySigner(TimestampSigner):
    """itsdangerous' timestamp signer, its derived key kept per process. The key is an HMAC of
    the secret and the salt, the same on every call, yet itsdangerous derives it afresh on
    every sign and verify (and makes a new signer for each). Same signatures."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = (self.secret_keys[-1] if secret_key is None else secret_key, self.salt, self.key_derivation, self.digest_method)
        derived = _DERIVED_KEYS.get(key)
        if derived is None:
            if len(_DERIVED_KEYS) > 32:
                _DERIVED_KEYS.clear()
            derived = _DERIVED_KEYS[key] = super().derive_key(secret_key)
        return derived


class _ShortPayloadSerializer(URLSafeTimedSerializer):
    """itsdangerous' URL-safe timed serializer, minus a zlib attempt on payloads too short to
    shrink. URLSafeSerializerMixin compresses every payload and keeps the result only when it
    is shorter; a CSRF token's payload (a 40-digit hex string in JSON, 42 bytes) never is, and
    ``zlib.compress`` (a fresh 256 KiB deflate state each call) was 37 of the 45 µs a token
    took. Same bytes out as itsdangerous gives for these payloads; longer ones go its way."""

    SHORT = 64
    default_signer = _KeptKeySigner

    def dump_payload(self, obj: Any) -> bytes:
        raw = Serializer.dump_payload(self, obj)
        if len(raw) > self.SHORT:
            return super().dump_payload(obj)
        return base64_encode(raw)


_CSRF_SERIALIZERS: dict[Any, URLSafeTimedSerializer] = {}
# Signed tokens by (secret, the session's raw token), when tokens never expire
# (WTF_CSRF_TIME_LIMIT None, as configured): validation then ignores the token's timestamp, so
# a session's token signed once stands for every later one. Signing was ~6 % of a served
# availability page (py-spy, issue 11 part 8b).
_CSRF_TOKENS: dict[tuple[Any, str], str] = {}
_CSRF_TOKENS_MAX = 4096


def csrf_token() -> str:
    """``flask_wtf.csrf.generate_csrf()``, made cheaper: the signed token for this request's
    session (one per request, kept in ``g`` as Flask-WTF keeps it, so its forms and
    ``validate_csrf`` see the same token), signed by a serializer kept per secret and without
    the zlib attempt (_ShortPayloadSerializer), and without a time limit signed once per
    session (_CSRF_TOKENS). Flask-WTF validates it as its own."""
    config = current_app.config
    field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    token = g.get(field)
    if token is None:
        secret = config.get("WTF_CSRF_SECRET_KEY", current_app.secret_key)
        if not secret:
            raise RuntimeError("A secret key is required to use CSRF.")
        if field not in session:
            session[field] = hashlib.sha1(os.urandom(64)).hexdigest()
        raw = session[field]
        kept = config.get("WTF_CSRF_TIME_LIMIT", 3600) is None
        token = _CSRF_TOKENS.get((secret, raw)) if kept else None
        if token is None:
            serializer = _CSRF_SERIALIZERS.get(secret)
            if serializer is None:
                if len(_CSRF_SERIALIZERS) > 8:
                    _CSRF_SERIALIZERS.clear()
                serializer = _CSRF_SERIALIZERS[secret] = _ShortPayloadSerializer(secret, salt="wtf-csrf-token")
            token = serializer.dumps(raw)
            if kept:
                if len(_CSRF_TOKENS) >= _CSRF_TOKENS_MAX:
                    _CSRF_TOKENS.clear()
                _CSRF_TOKENS[(secret, raw)] = token
        setattr(g, field, token)
    return token


class KioskSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its serializer made once per secret key (Flask builds one
    per request: ~7 % of a served availability page in serializer set-up alone) and signing
    with a kept derived key (_KeptKeySigner). Same cookies, read and written alike."""

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        fallbacks = tuple(app.config["SECRET_KEY_FALLBACKS"] or ())
        key = (app.secret_key, fallbacks)
        serializer = self._serializers.get(key)
        if serializer is None:
            # As Flask builds it (itsdangerous wants the current key last), with the kept-key signer.
            serializer = URLSafeTimedSerializer(
                [*fallbacks, app.secret_key],
                salt=self.salt,
                serializer=self.serializer,
                signer=_KeptKeySigner,
                signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method},
            )
            if len(self._serializers) > 8:
                self._serializers.clear()
            self._serializers[key] = serializer
        return serializer


def _cached_url_for(app: Flask) -> Callable[..., str]:
    """url_for for templates: a URL without arguments (and every static file's, hash included)
    is built once per process; anything else goes to Flask's url_for."""
    urls: dict[tuple[str, str, str | None], str] = {}

    def cached(endpoint: str, **values: Any) -> str:
        if (values and (endpoint != "static" or len(values) != 1)) or endpoint.startswith(".") or not has_request_context():
            return url_for(endpoint, **values)
        key = (request.script_root, endpoint, values.get("filename"))
        url = urls.get(key)
        if url is None:
            url = urls[key] = url_for(endpoint, **values)
        return url

    return cached


# ---- static files: fingerprinted URLs, cached for good ----

STATIC_VERSION_ARG = "v"
IMMUTABLE = "public, max-age=31536000, immutable"


class StaticFingerprints:
    """A short content hash per file under static/, computed once per process on first use.

    ``url_for('static', filename=...)`` (templates and code alike) gets ``?v=<hash>`` through a
    URL default, so any file under static/ is fingerprinted, including files added later. A
    request carrying the file's current hash is answered with IMMUTABLE: a kiosk never asks
    for htmx or the CSS again. A URL without it, or with an old hash, keeps Flask's
    revalidating ``no-cache``; after an upgrade the pages name the new hashes (the process
    restarted, so the hashes are computed afresh).
    """

    def __init__(self, folder: str | None) -> None:
        self.folder = folder
        self._hashes: dict[str, str | None] = {}

    def get(self, filename: str) -> str | None:
        try:
            return self._hashes[filename]
        except KeyError:
            pass
        digest: str | None = None  # no such file: the URL stays plain and the request a 404
        path = safe_join(self.folder, filename) if self.folder else None
        if path is not None:
            try:
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()[:12]
            except OSError:
                pass
        self._hashes[filename] = digest
        return digest

    def url_defaults(self, endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and STATIC_VERSION_ARG not in values and "filename" in values:
            digest = self.get(values["filename"])
            if digest is not None:
                values[STATIC_VERSION_ARG] = digest

    def cache_headers(self, response: Response) -> None:
        filename = (request.view_args or {}).get("filename")
        version = request.args.get(STATIC_VERSION_ARG)
        if response.status_code in (200, 304) and version and filename and version == self.get(filename):
            response.headers["Cache-Control"] = IMMUTABLE


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint == "static":
        current_app.extensions["kiosk_static"].cache_headers(response)
    else:
        # Visitor pages may show masked personal data: never keep them in a cache.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _is_staff_page() -> bool:
    return request.path == "/staff" or request.path.startswith("/staff/")


def error_response(status: int, title: str, message: str) -> Response:
    if _is_staff_page():
        # Staff keep the staff layout and a way back to the dashboard, not the visitor shell.
        try:
            body = render_template("errors/staff_page.html", status_code=status, title=title, message=message)
        except Exception:  # the staff layout itself failed (e.g. the database is gone): the plain page
            log.exception("Staff error page failed on %s", request.path)
        else:
            response = make_response(body, status)
            response.vary.add("HX-Request")
            return response
    return render("errors/page.html", "errors/_message.html", status=status, status_code=status, title=title, message=message)


def _try_again() -> str:
    if _is_staff_page():
        return _("Please go back and try again.")
    return _("Please go back to the home screen and try again.")


def _handle_http_error(error: HTTPException) -> Response:
    status = error.code or 500
    titles = {
        400: (_("Something was wrong with that request"), _try_again()),
        403: (_("Not allowed"), _("This page is for administrators only.") if _is_staff_page() else _("This page is for centre staff only.")),
        404: (
            _("Page not found"),
            _("This page or record does not exist.") if _is_staff_page() else _("The page you tapped does not exist. Please go back to the home screen."),
        ),
        405: (_("Not allowed"), _try_again()),
        413: (_("Too much data"), _try_again()),
        429: (_("Too many attempts"), _("Please wait a minute and try again.")),
    }
    title, message = titles.get(status, (_("Something went wrong"), _try_again()))
    return error_response(status, title, message)


def _handle_csrf_error(error: CSRFError) -> Response:
    log.info("CSRF refused on %s: %s", request.path, error.description)
    return error_response(400, _("This page has expired"), _try_again())


def _handle_unexpected(error: Exception) -> Response:
    log.exception("Unhandled error on %s %s", request.method, request.path)
    return error_response(500, _("Something went wrong"), _("Sorry, the kiosk hit a problem. Please go back to the home screen or ask the staff at the desk."))


def init_app(app: Flask) -> None:
    from kiosk.privacy import mask_name, mask_phone

    app.jinja_env.filters["mask_phone"] = mask_phone
    app.jinja_env.filters["mask_name"] = mask_name
    app.jinja_env.filters["natural_day"] = natural_day
    app.jinja_env.filters["natural_moment"] = natural_moment
    app.jinja_env.filters["natural_date"] = natural_date
    app.session_interface = KioskSessionInterface()
    app.context_processor(_template_context)
    _lazy_current_user(app)
    app.jinja_env.globals["url_for"] = _cached_url_for(app)
    fingerprints = StaticFingerprints(app.static_folder)
    app.extensions["kiosk_static"] = fingerprints
    app.url_defaults(fingerprints.url_defaults)
    app.after_request(_security_headers)
    trim_request_hooks(app)
    app.register_error_handler(CSRFError, _handle_csrf_error)
    app.register_error_handler(HTTPException, _handle_http_error)
    app.register_error_handler(Exception, _handle_unexpected)


# ---- staff forms and exports, shared by the features ----


def show_error(form, error) -> None:
    """Put a service's refusal next to the field it names, or at the top of the form.

    A refusal standing for several (kiosk.errors.several) puts each one next to its field.
    """
    for one in getattr(error, "all_errors", None) or [error]:
        field = getattr(form, one.field, None) if getattr(one, "field", None) else None
        errors = field.errors if field is not None else form.form_errors
        if not isinstance(errors, list):  # WTForms keeps a tuple until validate() has run
            errors = field.errors = list(errors) if field is not None else errors
        errors.append(str(one.message))


def submit_form(form, save: Callable[[], Any]) -> tuple[Any, int]:
    """Validate ``form`` and run ``save`` (a service call, which commits its own unit of work
    through ``write_transaction``; a view never commits).

    Returns (what save returned, 200), or (None, status): 200 for a GET, 400 for a POST that
    failed validation (a missing CSRF token, a bad choice), or the refusal's own status with
    its message on the form and nothing written.
    """
    if not form.validate_on_submit():
        return None, 400 if request.method == "POST" else 200
    try:
        result = save()
    except KioskError as error:
        show_error(form, error)
        return None, error.status
    return result, 200


# A spreadsheet treats a cell starting with one of these as a formula (or DDE command), so a
# member called "=HYPERLINK(…)" would run on the desk PC (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _neutralised(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def download(data: bytes, filename: str, mimetype: str, *, as_attachment: bool = True) -> Response:
    """Send bytes as a file: Flask writes Content-Disposition (with an RFC 5987 UTF-8 name, so
    a Chinese filename survives) and the content type. Never cached: exports hold personal data."""
    response = send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=as_attachment, download_name=filename, etag=False, conditional=False)
    response.headers["Content-Type"] = mimetype  # as given: werkzeug would add a charset to SVG
    response.headers["Cache-Control"] = "no-store"
    return response


def csv_download(rows: list[list], filename: str) -> Response:
    buffer = io.StringIO()
    buffer.write("\ufeff")  # Excel, as used in the centres, reads UTF-8 CSV only with a BOM
    csv.writer(buffer).writerows([[_neutralised(cell) for cell in row] for row in rows])
    return download(buffer.getvalue().encode("utf-8"), filename, "text/csv; charset=utf-8")


def xlsx_download(rows: list[list], filename: str, sheet_title: str = "data") -> Response:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = sheet_title
    for row in rows:
        sheet.append(row)
    for cells in sheet.iter_rows():
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, never a formula, whatever it starts with
    buffer = io.BytesIO()
    workbook.save(buffer)
    return download(buffer.getvalue(), filename, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
