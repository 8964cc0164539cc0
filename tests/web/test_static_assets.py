"""Static files: fingerprinted URLs served as immutable; pages themselves never cached."""

from __future__ import annotations

import hashlib
import re

from flask import url_for

from kiosk.config import PROJECT_ROOT
from kiosk.web import IMMUTABLE

STATIC = PROJECT_ROOT / "static"
ASSET = re.compile(r'(?:src|href)="(/static/[^"?]+)(?:\?v=([0-9a-f]+))?"')


def digest(relative: str) -> str:
    return hashlib.sha256((STATIC / relative).read_bytes()).hexdigest()[:12]


def test_every_asset_a_page_links_carries_its_content_hash(client, open_activity):
    from kiosk.checkin.services import poster_token
    from kiosk.checkin.settings import code_signer

    token = poster_token(open_activity, code_signer(client.application.config), client.application.config["CENTRE_CODE"])
    seen = set()
    for path in ("/", "/points", "/checkin", "/attract", "/staff/login", f"/c/{token}"):
        html = client.get(path).get_data(as_text=True)
        links = ASSET.findall(html)
        assert links, path
        for url, version in links:
            relative = url.removeprefix("/static/")
            assert version == digest(relative), f"{path}: {url} without its current hash"
            seen.add(relative)
    assert {"css/kiosk.css", "vendor/htmx-2.0.11/htmx.min.js", "js/kiosk.js"} <= seen


def test_any_file_under_static_is_fingerprinted_and_served_immutable(app, client):
    files = [p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert len(files) >= 8
    for relative in files:
        with app.test_request_context():
            url = url_for("static", filename=relative)
        assert url == f"/static/{relative}?v={digest(relative)}"
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == IMMUTABLE, url


def test_a_file_added_while_running_gets_its_own_hash(app, client, tmp_path):
    """Files the visitor pages add later need no registration (the hash is taken on first use)."""
    app.static_folder = str(tmp_path)
    app.extensions["kiosk_static"].folder = str(tmp_path)
    (tmp_path / "new.js").write_text("console.log(1)")
    with app.test_request_context():
        url = url_for("static", filename="new.js")
    assert url == "/static/new.js?v=" + hashlib.sha256(b"console.log(1)").hexdigest()[:12]
    assert client.get(url).headers["Cache-Control"] == IMMUTABLE


def test_only_the_current_hash_is_cached_for_good(client):
    """An unversioned or stale URL must revalidate, or a kiosk would keep old code after an upgrade."""
    assert client.get("/static/css/kiosk.css").headers["Cache-Control"] == "no-cache"
    assert client.get("/static/css/kiosk.css?v=000000000000").headers["Cache-Control"] == "no-cache"
    assert client.get("/static/nope.css?v=000000000000").status_code == 404
    missing = client.get("/static/nope.css")
    assert missing.status_code == 404 and "immutable" not in missing.headers.get("Cache-Control", "")


def test_pages_stay_uncached(client):
    for path in ("/", "/points", "/attract", "/staff/login", "/no-such-page"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_templates_link_static_files_only_through_url_for():
    """A hand-written /static/... link would miss the hash (and be revalidated on every load)."""
    for template in (PROJECT_ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r'(src|href)="/static/', text), template


def test_static_files_do_not_vary_on_the_cookie(client):
    """Every visit changes the session cookie; ``Vary: Cookie`` would make the browser fetch the
    assets again for each visitor (Flask-Login's after-request hook reads the session). Fails
    without the static skip in trim_request_hooks (tried)."""
    client.get("/")  # a visitor session exists
    response = client.get(url_for_static(client, "css/kiosk.css"))
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert "Cookie" not in response.headers.get("Vary", "")
    assert "Set-Cookie" not in response.headers


def url_for_static(client, filename: str) -> str:
    with client.application.test_request_context():
        return url_for("static", filename=filename)
