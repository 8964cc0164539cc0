"""A second full load of the home page fetches only the HTML: htmx, the CSS, the scripts and
the icon come from the browser's cache without even a revalidation (fingerprinted, immutable
URLs)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app, request

# The icon, the CSS, htmx and the scripts linked in base.html's head (counted, so a new script
# does not break the test, and a page that loaded fewer or more than its head lists would).
_BASE = (Path(__file__).parents[2] / "templates" / "base.html").read_text(encoding="utf-8")
ASSETS_ON_HOME = _BASE[: _BASE.index("</head>")].count("url_for('static'")


def settle(reached: list, at_least: int, wait: float = 3) -> None:
    """Chromium fetches the icon after the load event: wait for stragglers."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and len(reached) < at_least:
        time.sleep(0.05)
    time.sleep(0.5)


def test_second_full_load_of_home_transfers_only_the_html(page, serve):
    """Fails without the immutable Cache-Control (tried: with Flask's default ``no-cache`` every
    asset comes back to the server as a conditional request, answered 304)."""
    reached: list[tuple[str, int]] = []

    def count_requests_at_the_server(session):
        app = current_app._get_current_object()

        @app.after_request
        def record(response):
            reached.append((request.full_path.rstrip("?"), response.status_code))
            return response

    base_url = serve(setup=count_requests_at_the_server)

    page.goto(base_url + "/")
    settle(reached, 1 + ASSETS_ON_HOME)
    assets = [path for path, _ in reached if path.startswith("/static/")]
    assert len(assets) == ASSETS_ON_HOME and all("?v=" in path for path in assets), reached

    for again in ("navigation", "reload"):
        reached.clear()
        page.goto(base_url + "/") if again == "navigation" else page.reload()
        settle(reached, 2, wait=1)
        assert reached == [("/", 200)], (again, reached)  # nothing but the page reached the server
        # The page still used its assets, from the cache: nothing transferred for them.
        transferred = page.evaluate(
            "() => performance.getEntriesByType('resource').filter(e => e.name.includes('/static/')).map(e => [e.name, e.transferSize])"
        )
        assert len(transferred) >= ASSETS_ON_HOME - 1 and [e for e in transferred if e[1] != 0] == [], (again, transferred)
        # ...and every stylesheet and script of the first load was used again (from the cache).
        assert {urlsplit(url).path for url, _ in transferred} >= {p.split("?")[0] for p in assets if not p.endswith(".svg")}
        assert page.evaluate("() => typeof htmx") == "object"
