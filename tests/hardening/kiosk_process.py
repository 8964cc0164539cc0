"""A `kiosk serve` process the hardening tests can SIGKILL and start again on the same port and
database, and the clients that load it (a kiosk's keypad, a card holder, staff at the desk)."""

from __future__ import annotations

import http.client
import http.cookiejar
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.extensions import db
from tests.helpers import CSRF_META, TEST_SECRET, TEST_SIGNING_KEY, copy_database, make_app

# A killed request (connection reset, refused while the server is down) has no known outcome.
UNKNOWN = -1


def seeded_instance(instance: Path, migrated_database: Path, seed: Callable[[Any], Any]) -> Any:
    """An instance folder for `kiosk serve`: a copy of the migrated database with ``seed(session)``
    run in it (the app's connections closed after); what ``seed`` returns."""
    instance.mkdir(parents=True, exist_ok=True)
    copy_database(migrated_database, instance / "kiosk.sqlite3")
    app = make_app(instance)
    with app.app_context():
        seeded = seed(db.session)
        db.session.remove()
        db.engine.dispose()
    return seeded


class KioskProcess:
    """`python -m kiosk.cli serve` on a fixed loopback port, in its own process group."""

    def __init__(self, instance: Path, *, threads: int = 8, environ: dict[str, str] | None = None, **config: str):
        """``config``: KIOSK_* settings; ``environ``: other variables (NOTIFY_SOCKET, ...)."""
        self.instance = instance
        self.threads = threads
        self.environ = environ or {}
        self.database = instance / "kiosk.sqlite3"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = config
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
        env |= {"KIOSK_INSTANCE_PATH": str(self.instance), "KIOSK_SECRET_KEY": TEST_SECRET, "KIOSK_SIGNING_KEY": TEST_SIGNING_KEY}
        return env | {"KIOSK_DISTRICT_KEY": "test-district-key"} | {f"KIOSK_{k}": str(v) for k, v in self.config.items()} | self.environ

    def start(self) -> KioskProcess:
        """Start it as a kiosk PC's service manager would: the same command, no repair step."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "serve", "--port", str(self.port), "--threads", str(self.threads)],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("kiosk serve exited: " + self.process.stderr.read().decode(errors="replace")[-2000:])
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("kiosk serve did not answer /healthz")

    def kill(self) -> None:
        """SIGKILL: no atexit, no WAL checkpoint, no goodbye (as a power cut to the process)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process.stderr.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process.stderr.close()

    def sql(self, query: str, *args) -> list[tuple]:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(query, args).fetchall()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 after a save is the answer to record


class Browser:
    """One browser's cookies and CSRF token (an enrolled kiosk when ``device`` is given)."""

    def __init__(self, base: str, device_secret: str | None = None):
        self.base = base
        jar = http.cookiejar.CookieJar()
        if device_secret:
            host = urllib.parse.urlsplit(base).hostname
            jar.set_cookie(
                http.cookiejar.Cookie(0, "kiosk_device", device_secret, None, False, host, False, False, "/", True, False, None, False, None, None, {})
            )
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
        self.token = ""

    def request(self, path: str, data: dict | None = None, *, htmx: bool = False, timeout: float = 30) -> tuple[int, str]:
        """(status, body), or (UNKNOWN, "") when the server went away mid-request."""
        headers = {"X-CSRFToken": self.token} if data is not None else {}
        if htmx:
            headers["HX-Request"] = "true"
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(urllib.request.Request(self.base + path, data=body, headers=headers), timeout=timeout) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            try:
                status, text = error.code, error.read().decode(errors="replace")
            except (OSError, http.client.HTTPException):  # killed while sending the error page
                return UNKNOWN, ""
        except (OSError, http.client.HTTPException):  # reset, refused, cut off mid-body
            return UNKNOWN, ""
        match = CSRF_META.search(text)
        if match:
            self.token = match.group(1)
        return status, text
