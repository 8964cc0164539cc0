"""App-wide guards against hostile input that no single feature owns (docs/security.md)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request
from werkzeug.routing import IntegerConverter

# SQLite integers are signed 64-bit: a larger id in a URL raised OverflowError (a 500).
MAX_ROUTE_INT = 2**63 - 1


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` that answers 404 for ids SQLite cannot hold, instead of a 500."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ROUTE_INT)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Before the blueprints are registered: their rules bind the converter when added."""
    app.url_map.converters["int"] = BoundedIntConverter
    _harden_form_data()


def _form_data(self, form, formdata):
    """What a staff form reads: the posted fields, and uploaded files only for its file fields.

    Flask-WTF's own choice mixes every uploaded file into the text fields (a file posted as
    ``current_password`` reached ``Length`` as a FileStorage: TypeError, a 500) and turns a JSON
    body into form data (a list or a number there: ValueError). No kiosk form is posted as JSON.
    Found by tests/hardening/test_routes_fuzz.py."""
    from flask_wtf.form import _Auto, _is_submitted
    from werkzeug.datastructures import FileStorage, MultiDict

    if formdata is not _Auto:
        return formdata
    if not _is_submitted():
        return None
    from wtforms.fields import FileField  # Flask-WTF's and MultipleFileField are subclasses

    file_fields = {field.name for field in form if isinstance(field, FileField)}
    data = MultiDict(request.form)
    for name, value in request.files.items(multi=True):
        if name in file_fields and isinstance(value, FileStorage):
            data.add(name, value)
    return data


def _harden_form_data() -> None:
    from flask_wtf import FlaskForm

    FlaskForm.Meta.wrap_formdata = _form_data  # type: ignore[method-assign]


def public_base_url() -> str:
    """The address printed into QR codes: PUBLIC_BASE_URL, else the address the page was
    opened with only if its host is on PUBLIC_HOSTS (a forged ``Host: evil.example`` would
    otherwise be printed on every poster), else the kiosk's own loopback address."""
    config = current_app.config
    if config["PUBLIC_BASE_URL"]:
        return config["PUBLIC_BASE_URL"].rstrip("/")
    hostname = urlsplit(request.host_url).hostname or ""
    if hostname in config["PUBLIC_HOSTS"]:
        return request.host_url.rstrip("/")
    return f"http://127.0.0.1:{int(config['SERVE_PORT'])}"


def pass_key() -> str:
    """Rate-limit key for one phone check-in pass (kiosk.checkin): a pass opened by one phone
    checks in a family's few numbers, not a list of numbers typed by a script."""
    import hashlib

    return "pass:" + hashlib.sha256((request.form.get("pass") or "")[:400].encode("utf-8", "surrogatepass")).hexdigest()


def configuration_problems(config) -> list[str]:
    """What is missing for the kiosk to work (shown by /healthz and refused by `kiosk serve`)."""
    from kiosk.config import DEFAULTS

    problems = []
    if not config.get("SECRET_KEY") or config["SECRET_KEY"] == DEFAULTS["SECRET_KEY"]:
        problems.append("SECRET_KEY")
    if not config.get("SIGNING_KEY"):
        problems.append("SIGNING_KEY")
    if not config.get("DISTRICT_KEY"):
        problems.append("DISTRICT_KEY")
    return problems
