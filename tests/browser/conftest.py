"""Browser fixtures: the kiosk served by waitress on loopback, Debian's Chromium driven by
Playwright (executable_path; no browser download), one fresh context per test."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("KIOSK_TEST_CHROMIUM", "/usr/bin/chromium")
# As root Chromium needs --no-sandbox; on this closed network the background services would
# only make refused connections (DESIGN.md §11).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
KIOSK_VIEWPORT = {"width": 1920, "height": 1080}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (scripts/system-deps.sh)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def base_url(serve) -> str:
    return serve()


def enrol(context) -> None:
    """Make this browser context the test database's enrolled kiosk device (kiosk.devices)."""
    from kiosk.devices.access import DEVICE_COOKIE
    from tests.helpers import TEST_DEVICE_SECRET

    context.add_cookies([{"name": DEVICE_COOKIE, "value": TEST_DEVICE_SECRET, "domain": "127.0.0.1", "path": "/", "httpOnly": True, "sameSite": "Strict"}])


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport=KIOSK_VIEWPORT, locale="zh-CN", has_touch=True)
    enrol(context)
    yield context
    context.close()


@pytest.fixture
def page(context, request):
    """A page that fails the test on any request off the machine or any console error
    (a CSP violation, a script error)."""
    page = context.new_page()
    foreign: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if urlsplit(r.url).hostname not in {"127.0.0.1", "localhost"} else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 4" not in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    assert foreign == [], f"requests left the machine: {foreign}"
    assert errors == [], f"console errors: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
