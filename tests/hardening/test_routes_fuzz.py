"""Bad input everywhere (issue 14): every route of the URL map, every method, every route
parameter and every form field it reads, with random and hostile values, as a logged-in
administrator on an enrolled kiosk (valid CSRF token) and sometimes as a stranger.

Nothing is listed by hand. The routes come from ``app.url_map.iter_rules()`` (one test per
endpoint and method, so a new route gets its own test id); the field names of a route come
from its view's source (``request.form.get("x")``, ``request.args["x"]``, the WTForms classes it
instantiates, the helpers of its module it calls) and from every ``<form>`` the app's own pages
render for it (names, hidden values and ``<option>`` values, so a draw can get past the first
check); a generic set tops them up.

Each answer must be a success, a redirect or a 4xx with a page that says something; never a
5xx, never a traceback or a secret in the body. After a 4xx the database is unchanged:
``PRAGMA data_version`` on a watching connection says whether anyone committed, and the
per-table hash of the dump names the table. Between examples the database is put back to its
snapshot when a success wrote to it, and the administrator's cookie is put back, so an example
that logs out, revokes the kiosk or changes the password does not hide the next one.

Sizes: FUZZ_EXAMPLES (default 10) examples per endpoint and method; in CI derandomized so a
failure reproduces. The runs that found the bugs listed in docs/security.md used 200.
"""

from __future__ import annotations

import hashlib
import html.parser
import inspect
import io
import logging
import os
import re
import sqlite3
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import Rule

from kiosk.extensions import db
from tests.helpers import TEST_SECRET, TEST_SIGNING_KEY, copy_database, login, make_app, open_activity_now

CI = os.environ.get("CI") == "true"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
ADMIN, PASSWORD = "fuzz.admin", "fuzz-admin-password-1"
FUZZ_CONFIG = {"RATELIMIT_ENABLED": False}

# ---- hostile values ----

SAMPLES = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n",
    "%0d%0aSet-Cookie: x=1",
    "\u202eevil\u202c",
    "\u2066\u2067\u2068",
    "\ufeff",
    "\u200b",
    "' OR 1=1 --",
    "'; DROP TABLE member; --",
    '" OR ""="',
    "1; SELECT sqlite_version()",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '<b hx-get="/staff/logout" hx-trigger="load">x</b>',
    "{{7*7}}",
    "{% raw %}",
    "${7*7}",
    "%s%s%s%n",
    "😀" * 40,
    "👨‍👩‍👧‍👦",
    "𠜎𠜱𠝹",
    "紅樓夢",
    "１３８１２３４５６７８",
    "../../../../etc/passwd",
    "..%2f..%2fkiosk.toml",
    "....//....//kiosk.toml",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "-1",
    "0",
    "-0",
    "1e308",
    "NaN",
    "-inf",
    "0x1F",
    "²",  # "²".isdigit() is true, int("²") raises
    "١٢٣",  # Arabic-Indic digits: isdigit() and int() both accept them
    "1²",
    "9" * 400,
    str(2**63),
    str(-(2**63) - 1),
    "0001-01-01",
    "0001-01-01T00:00",
    "9999-12-31",
    "9999-12-31T23:59",
    "2026-02-30",
    "2026-13-01T25:61",
    "1970-01-01T00:00:00Z",
    "null",
    "true",
    "[]",
    "{}",
    "C1.XH-CY-CY1.1.P.中",
    "M1.XH-CY-CY1.1.1.中",
    "M1.XH-CY-CY1.1.1.AAAAAAAAAAAAAAAAAAAAAA",
    "a.中",
    ".",
    "A" * 5000,
]
SAMPLE_TEXT = st.sampled_from(SAMPLES)
CONTROL_TEXT = st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Zl", "Zp", "So", "Lo", "Mn"]), min_size=1, max_size=30)
ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
NUMBERS = st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=-3, max_value=3)).map(str)
FLOATS = st.floats(allow_nan=True, allow_infinity=True).map(str)
DATES = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat)
MOMENTS = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M"))
LONG = st.integers(min_value=300, max_value=200_000).map(lambda n: ("长" * n)[:n])
HOSTILE = st.one_of(SAMPLE_TEXT, SAMPLE_TEXT, CONTROL_TEXT, ANY_TEXT, NUMBERS, FLOATS, DATES, MOMENTS, LONG)

TODAY = datetime.now(UTC).date()


def plausible(name: str) -> st.SearchStrategy[str]:
    """Values of the right shape for a field's name, so a draw gets past the first check."""
    lowered = name.lower()
    choices: list[st.SearchStrategy[str]] = []
    if "phone" in lowered or lowered in {"number", "person", "card"}:
        choices.append(st.sampled_from(["13812345678", "13900000001", "1381234", "138 1234 5678", "+8613812345678", "0123456789"]))
    if any(word in lowered for word in ("date", "day", "until", "_at", "from", "to", "month", "start", "end", "when")):
        soon = [TODAY + timedelta(days=n) for n in (-400, -1, 0, 1, 2, 7, 60)]
        choices.append(st.sampled_from([d.isoformat() for d in soon] + [f"{d.isoformat()}T{h:02d}:00" for d in soon for h in (0, 9, 14, 23)]))
        choices.append(st.sampled_from(["09:00", "14:30", "23:59", "00:00", "24:00", TODAY.strftime("%Y-%m")]))
    if any(
        word in lowered
        for word in (
            "id",
            "points",
            "capacity",
            "count",
            "minutes",
            "places",
            "limit",
            "days",
            "hours",
            "weekday",
            "page",
            "copies",
            "stock",
            "cost",
            "lead",
            "horizon",
            "seq",
        )
    ):
        choices.append(st.integers(min_value=-5, max_value=120).map(str))
    choices.append(
        st.sampled_from(["y", "on", "1", "true", "zh", "en", "admin", "staff", "culture", "once", "理发", "张建华", "翠苑一区", "70-79", "9787020002207"])
    )
    return st.one_of(*choices)


# ---- the routes and what they read ----

# request.form.get("x"), request.args["x"], and the same through a local (form = request.form).
FORM_FIELD = re.compile(r"(?:request\.(?:form|args|values|files)|\bform|\bargs|\bvalues)(?:\.get(?:list)?\(|\[)\s*['\"]([\w\-]+)['\"]")
FORM_CLASS = re.compile(r"\b([A-Z]\w*Form)\(")
CALLED = re.compile(r"\b(_?[a-z]\w*)\(")
GENERIC_FIELDS = ("code", "phone", "pass", "q", "page", "name", "note", "reason", "next", "lang", "request_key", "id", "date", "token")


def _source_fields(view: Any, depth: int = 2, seen: set | None = None) -> set[str]:
    """Field names a view reads, from its source, its WTForms classes and the same-module
    helpers it calls (two levels)."""
    from wtforms.fields.core import UnboundField

    seen = seen if seen is not None else set()
    function = inspect.unwrap(view)
    if function in seen:
        return set()
    seen.add(function)
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return set()
    names = set(FORM_FIELD.findall(source))
    namespace = getattr(function, "__globals__", {})
    for class_name in FORM_CLASS.findall(source):
        form = namespace.get(class_name)
        if isinstance(form, type):
            names |= {attr for klass in form.__mro__ for attr, value in vars(klass).items() if isinstance(value, UnboundField)}
    if depth:
        for called in set(CALLED.findall(source)):
            helper = namespace.get(called)
            if inspect.isfunction(helper) and helper.__module__ == function.__module__:
                names |= _source_fields(helper, depth - 1, seen)
    return names


class _Forms(html.parser.HTMLParser):
    """Every <form> of a page, and every element outside one that posts by itself (an htmx
    button): (action, method, {field: values seen})."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, set[str]]]] = []
        self._open: dict[str, set[str]] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        posts = "hx-post" in a or "hx-get" in a
        if tag == "form" or (posts and self._open is None):
            action = a.get("hx-post") or a.get("hx-get") or a.get("action", "")
            method = "post" if "hx-post" in a else a.get("method", "get").lower()
            fields: dict[str, set[str]] = defaultdict(set)
            self.forms.append((action, method, fields))
            if tag == "form":
                self._open = fields
            elif "name" in a:
                fields[a["name"]].add(a.get("value", ""))
            return
        if self._open is None:
            return
        if tag in {"input", "textarea", "button"} and "name" in a:
            self._open[a["name"]].add(a.get("value", ""))
        elif tag == "select" and "name" in a:
            self._select = a["name"]
            self._open[a["name"]].add("")
        elif tag == "option" and self._select:
            self._open[self._select].add(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "form":
            self._open = None


@dataclass
class Route:
    rule: Rule
    method: str
    fields: dict[str, set[str]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.method} {self.rule.rule}"


def _rules(app: Flask) -> list[tuple[Rule, str]]:
    return sorted(((r, m) for r in app.url_map.iter_rules() for m in sorted(r.methods - {"HEAD", "OPTIONS"})), key=lambda rm: (rm[0].rule, rm[1]))


def _collect_ids() -> list[str]:
    """Test ids from the URL map at collection time (an app with no database behind it)."""
    with tempfile.TemporaryDirectory() as directory:
        app = make_app(Path(directory))
        return [f"{m} {r.rule}" for r, m in _rules(app)]


ROUTE_IDS = _collect_ids()


# ---- the world the examples run in ----


class World:
    def __init__(self, app: Flask, database: Path, routes: dict[str, Route]):
        self.app = app
        self.database = database
        self.routes = routes
        self.watch = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        self.snapshot = sqlite3.connect(":memory:", check_same_thread=False)
        self.watch.backup(self.snapshot)
        self.tables = [
            name for (name,) in self.snapshot.execute("SELECT name FROM sqlite_master WHERE type='table' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name")
        ]
        self.snapshot_hashes = self.table_hashes(self.snapshot)
        self.version = self.data_version()
        self.cookies: list[tuple[str, str, str, str]] = []
        self.token = ""
        self.ids: dict[str, list[int]] = {}
        self.errors: list[str] = []

    def data_version(self) -> int:
        return self.watch.execute("PRAGMA data_version").fetchone()[0]

    def table_hashes(self, connection: sqlite3.Connection) -> dict[str, str]:
        hashes = {}
        for table in self.tables:
            rows = sorted(repr(row) for row in connection.execute(f'SELECT * FROM "{table}"'))
            hashes[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        return hashes

    def changed_tables(self) -> list[str]:
        now = self.table_hashes(self.watch)
        return [t for t in self.tables if now[t] != self.snapshot_hashes[t]]

    def restore(self) -> None:
        """Put the database back to the snapshot (only when someone committed since)."""
        if self.data_version() == self.version:
            return
        with self.app.app_context():
            db.engine.dispose()
        self.snapshot.backup(self.watch)
        self.version = self.data_version()


def _seed(session) -> None:
    """Rows behind every kind of id a route takes: the demo, plus a check-in, a booking, a
    redemption and a loan made through the services."""
    from kiosk.demo import load_demo
    from kiosk.staff.services import create_staff_user

    load_demo(session)
    create_staff_user(session, ADMIN, PASSWORD, "admin", display_name="测试管理员")
    open_activity_now(session, title="模糊测试活动")
    session.commit()


def _discover(app: Flask, client, world: World) -> None:
    """Field names from the pages' own forms (GET every page with ids 1–3)."""
    adapter = app.url_map.bind("localhost")
    for rule, method in _rules(app):
        if method != "GET" or rule.endpoint in {"static", "staff.logout"}:
            continue
        for n in (1, 2, 3):
            path = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m, n=n: str(n) if m.group(1) == "int" else "x", rule.rule)
            response = client.get(path)
            if response.mimetype != "text/html":
                break
            parser = _Forms()
            parser.feed(response.get_data(as_text=True))
            for action, form_method, fields in parser.forms:
                target = urlsplit(action).path or path
                try:
                    endpoint, _values = adapter.match(target, method=form_method.upper())
                except Exception:  # noqa: BLE001 - a form aimed elsewhere (another host, a 405): not ours
                    continue
                for route in world.routes.values():
                    if route.rule.endpoint == endpoint and route.method == form_method.upper():
                        for name, values in fields.items():
                            route.fields.setdefault(name, set()).update(values)
            if "<" not in rule.rule:
                break


class _Captured(logging.Handler):
    def __init__(self, world: World):
        super().__init__(logging.ERROR)
        self.world = world

    def emit(self, record: logging.LogRecord) -> None:
        self.world.errors.append(self.format(record))


@pytest.fixture(scope="module")
def world(tmp_path_factory, migrated_database: Path) -> Iterator[World]:
    instance = tmp_path_factory.mktemp("fuzz")
    copy_database(migrated_database, instance / "kiosk.sqlite3")
    app = make_app(instance, **FUZZ_CONFIG)
    with pytest.MonkeyPatch.context() as patch, app.app_context():
        _seed(db.session)
        db.session.remove()
        # Work the app hands to another process: run the catalogue import in line (what the
        # child would do), never start a real `kiosk sync`.
        patch.setattr("kiosk.catalogue.views._start_import", _import_in_line)
        patch.setattr("kiosk.sync.views.subprocess.Popen", lambda *a, **k: None)
        routes = {f"{m} {r.rule}": Route(r, m) for r, m in _rules(app)}
        for route in routes.values():
            names = _source_fields(app.view_functions[route.rule.endpoint])
            route.fields = {name: set() for name in names}
        client = app.test_client()
        login(client, ADMIN, PASSWORD)
        world = World(app, instance / "kiosk.sqlite3", routes)
        _discover(app, client, world)
        world.restore()
        client = app.test_client()
        assert login(client, ADMIN, PASSWORD).status_code == 302
        from tests.helpers import csrf_token

        world.token = csrf_token(client, "/staff/")
        world.cookies = [(cookie.key, cookie.value, cookie.domain, cookie.path) for cookie in client._cookies.values()]
        world.version = world.data_version()
        world.watch.backup(world.snapshot)
        world.snapshot_hashes = world.table_hashes(world.snapshot)
        handler = _Captured(world)
        logging.getLogger("kiosk").addHandler(handler)
        try:
            yield world
        finally:
            logging.getLogger("kiosk").removeHandler(handler)
            db.engine.dispose()


def _import_in_line(app: Flask, path: Path, batch_id: int, filename: str) -> None:
    """What `kiosk catalogue import --batch` does in its child process, in this process: an
    exception other than a refusal is a bug (the child would die and the batch say 意外错误)."""
    from kiosk.catalogue.importing import count_records, import_file, kind_of
    from kiosk.catalogue.services import CatalogueError

    raw = path.read_bytes()
    with app.app_context():
        try:
            count_records(raw, kind_of(filename or path.name, raw[:8]))
            import_file(db.session, path, batch_id=batch_id, filename=filename)
        except CatalogueError:
            pass
        finally:
            db.session.remove()
            path.unlink(missing_ok=True)


# ---- one example ----

INT_VALUES = st.one_of(st.integers(min_value=1, max_value=4), st.integers(min_value=0, max_value=60), st.integers(min_value=2**63 - 3, max_value=2**70))
TRAVERSAL = st.sampled_from(
    ["../instance/kiosk.toml", "..%2f..%2fkiosk.toml", "%2e%2e/%2e%2e/etc/passwd", "css/../../kiosk/config.py", "/etc/passwd", "js/kiosk.js%00.png", "."]
)


def _route_value(converter: str) -> st.SearchStrategy[str]:
    if converter == "int":
        return st.one_of(INT_VALUES.map(str), INT_VALUES.map(str), HOSTILE)
    if converter == "path":
        return st.one_of(TRAVERSAL, HOSTILE, st.sampled_from(["js/kiosk.js", "css/kiosk.css"]))
    return HOSTILE


def _field_value(route: Route, name: str) -> st.SearchStrategy[Any]:
    seen = sorted(v for v in route.fields.get(name, ()) if v)
    text = st.one_of(HOSTILE, plausible(name), *([st.sampled_from(seen)] * 2 if seen else []))
    return st.one_of(
        text,
        text,
        text,
        st.lists(text, min_size=2, max_size=3),  # the field twice: a list where one value is expected
        st.builds(lambda body: (io.BytesIO(body), "x.png"), st.binary(max_size=64)),  # a file where text is expected
    )


@dataclass
class Request:
    method: str
    path: str
    data: dict[str, Any]
    headers: dict[str, str]
    as_json: str  # "", "object", or "array" (a body of the wrong shape)
    stranger: bool

    def send(self, world: World):
        client = world.app.test_client(enrolled=not self.stranger)
        if not self.stranger:
            for key, value, domain, path in world.cookies:
                client.set_cookie(key, value, domain=domain, path=path)
        if self.method == "GET":
            flat = {k: v for k, v in self.data.items() if not isinstance(v, tuple)}
            flat = {k: [x for x in v if isinstance(x, str)] if isinstance(v, list) else v for k, v in flat.items()}
            return client.get(self.path, query_string=flat, headers=self.headers)
        if self.as_json:
            body: Any = {k: v for k, v in self.data.items() if not isinstance(v, tuple)}
            if self.as_json == "array":
                body = list(body.values())
            return client.open(self.path, method=self.method, json=body, headers=self.headers)
        return client.open(self.path, method=self.method, data=self.data, headers=self.headers)


@st.composite
def requests(draw, route: Route, token: str) -> Request:
    def fill(match: re.Match) -> str:
        value = draw(_route_value(match.group(1) or "default"))
        return quote(value, safe="") or "x"

    path = re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", fill, route.rule.rule)
    names = sorted(set(route.fields) | set(draw(st.sets(st.sampled_from(GENERIC_FIELDS), max_size=2))))
    chosen = draw(st.sets(st.sampled_from(names), max_size=len(names))) if names else set()
    if names and draw(st.booleans()):  # often every field the route knows, so a draw goes deep
        chosen = set(route.fields) | chosen
    data = {name: draw(_field_value(route, name)) for name in sorted(chosen)}
    headers: dict[str, str] = {}
    if route.method != "GET":
        csrf = draw(st.sampled_from(["good", "good", "good", "good", "missing", "bad"]))
        if csrf == "good":
            headers["X-CSRFToken"] = token
        elif csrf == "bad":
            # What a header can carry at all: latin-1, no line breaks.
            value = draw(HOSTILE).encode("utf-8", "replace").decode("latin-1")[:200]
            headers["X-CSRFToken"] = re.sub(r"[\x00-\x1f\x7f]", "", value) or "x"
    if draw(st.booleans()):
        headers["HX-Request"] = "true"
        if draw(st.booleans()):
            headers["HX-Target"] = "main"
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        headers["Accept-Language"] = draw(st.sampled_from(["en", "zh-CN,zh;q=0.9", "xx-hostile;q=abc", "*", "en;q=NaN", ";;;,,,"]))
    as_json = ""
    if route.method != "GET" and draw(st.integers(min_value=0, max_value=14)) == 0:
        as_json = draw(st.sampled_from(["object", "array"]))
    stranger = draw(st.integers(min_value=0, max_value=9)) == 0
    return Request(route.method, path, data, headers, as_json, stranger)


# Refusals that write on purpose: a failed login is audited (docs/security.md).
WRITING_REFUSALS = {"POST /staff/login": {"audit_entry"}}
SECRETS = (TEST_SECRET, TEST_SIGNING_KEY, "test-district-key", PASSWORD)


def check(world: World, route: Route, request: Request) -> None:
    world.restore()
    world.errors.clear()
    response = request.send(world)
    body = response.get_data()
    where = f"{request.method} {request.path} data={str(request.data)[:300]} headers={request.headers} json={request.as_json} stranger={request.stranger}"
    logged = "\n".join(world.errors)[-3000:]
    assert response.status_code < 500, f"{response.status_code} on {where}\n{logged}"
    assert b"Traceback" not in body, where
    for secret in SECRETS:
        assert secret.encode() not in body, f"{secret!r} in the answer to {where}"
    if 400 <= response.status_code < 500:
        assert body.strip(), f"empty {response.status_code} on {where}"
        if world.data_version() != world.version:
            changed = set(world.changed_tables()) - WRITING_REFUSALS.get(route.id, set())
            assert not changed, f"{response.status_code} on {where} but it wrote to {changed}"


@pytest.mark.parametrize("route_id", ROUTE_IDS)
def test_hostile_input_never_gives_a_5xx_and_a_refusal_writes_nothing(world: World, route_id: str):
    route = world.routes[route_id]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=CI,
        database=None if CI else settings.default.database,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(request=requests(route, world.token))
    def run(request: Request) -> None:
        check(world, route, request)

    run()


def test_every_route_of_the_url_map_is_fuzzed(world: World):
    """The parametrization is the URL map itself: nothing to keep in step by hand."""
    assert sorted(world.routes) == sorted(ROUTE_IDS)
    reads_a_form = [r.id for r in world.routes.values() if r.method == "POST" and r.fields]
    assert len(reads_a_form) > 40, reads_a_form
    assert sys.modules["kiosk"]


def test_a_file_where_text_is_expected_and_a_json_array_are_refused_not_500(world: World):
    """The fuzz's first find: a file posted as a text field (``current_password``) reached
    WTForms' Length validator as a FileStorage (TypeError → 500); a JSON array posted to a form
    became Flask-WTF form data (ValueError → 500). Checked to fail without
    ``kiosk.security._form_data``."""
    route = world.routes["POST /staff/password"]
    upload = Request("POST", "/staff/password", {"current_password": (io.BytesIO(b"x"), "x.png")}, {"X-CSRFToken": world.token}, "", False)
    check(world, route, upload)
    array = Request("POST", "/staff/password", {"current_password": "x", "new_password": "y"}, {"X-CSRFToken": world.token}, "array", False)
    check(world, route, array)


LOOKALIKES = ("²", "1²", "١٢٣")


def test_digit_lookalikes_in_every_field_of_every_route(world: World):
    """A sweep, not a draw: each field every route reads gets ``"²"`` (``isdigit()`` true,
    ``int()`` raises) and Arabic-Indic digits, the other fields a value its page offered.
    ``raw.isdigit()`` before ``int(raw)`` was a 500 at /booking/book and elsewhere."""
    failures = []
    for route in world.routes.values():
        if route.rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", lambda m: "1" if m.group(1) == "int" else "x", route.rule.rule)
        base = {name: min(values - {""}, default="1") for name, values in route.fields.items()}
        for name in sorted(route.fields):
            for value in LOOKALIKES:
                request = Request(route.method, path, base | {name: value}, {"X-CSRFToken": world.token, "HX-Request": "true"}, "", False)
                try:
                    check(world, route, request)
                except AssertionError as error:
                    failures.append(str(error).splitlines()[0][:200])
    assert failures == [], "\n".join(failures)
