"""Helpers the tests share (imported by test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import contextvars
import http.cookiejar
import os
import re
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient

from kiosk import create_app
from kiosk.members.models import Member
from kiosk.members.services import (
    card_token,
    register_member,
)
from kiosk.signing import TokenSigner

TEST_SECRET = "test-secret-key-not-for-production"


TEST_SIGNING_KEY = "test-signing-key-not-for-production"


# The kiosk device every test database has enrolled (kiosk.devices): test clients carry its
# cookie unless made with enrolled=False, as a phone or a stranger's laptop would be.
TEST_DEVICE_SECRET = "test-kiosk-device-secret-not-for-production"


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class IsolatedClient(FlaskClient):
    """Each request runs outside the test's own app context, as on a real server.

    Flask reuses an active app context for a test request, so ``g`` (Flask-Babel's locale,
    Flask-Login's user) and the scoped DB session would leak between requests and the test.
    """

    def __init__(self, *args, enrolled: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if enrolled:
            from kiosk.devices.access import DEVICE_COOKIE

            self.set_cookie(DEVICE_COOKIE, TEST_DEVICE_SECRET)

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


def make_app(instance_path: Path, **overrides) -> Flask:
    config = {"INSTANCE_PATH": instance_path, "SECRET_KEY": TEST_SECRET, "SIGNING_KEY": TEST_SIGNING_KEY, "DISTRICT_KEY": "test-district-key", "TESTING": True}
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = IsolatedClient
    return app


def enrol_test_device(session) -> None:
    from kiosk.devices.models import KioskDevice
    from kiosk.devices.services import hash_secret

    session.add(KioskDevice(name="test kiosk", secret_hash=hash_secret(TEST_DEVICE_SECRET), created_by="tests"))


def copy_database(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def visible_text(html: str) -> str:
    """A page's text without its tags (a date is in unbreakable pieces: <span>12月2日</span>
    <span>周三</span>), entities and no-break spaces as plain text."""
    import html as html_module

    return html_module.unescape(re.sub(r"<[^>]+>", "", html)).replace("\xa0", " ")


def csrf_token(client: FlaskClient, path: str = "/") -> str:
    """The token a page would give the browser (from <meta name="csrf-token">)."""
    html = client.get(path).get_data(as_text=True)
    match = CSRF_META.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def post(client: FlaskClient, path: str, data: dict | None = None, *, htmx: bool = False, token_from: str = "/"):
    headers = {"X-CSRFToken": csrf_token(client, token_from)}
    if htmx:
        headers["HX-Request"] = "true"
    return client.post(path, data=data or {}, headers=headers)


def login(client: FlaskClient, username: str, password: str):
    token = csrf_token(client, "/staff/login")
    return client.post("/staff/login", data={"username": username, "password": password, "csrf_token": token})


def register(session, name="张建华", phone="13812345678", **extra):
    fields = {"community": "翠苑一区", "age_band": "70-79", "consent": True, "consent_version": "2026-11", "actor": None} | extra
    return register_member(session, name=name, phone=phone, **fields)


class Visitor:
    """One browser: its own cookies, CSRF token and card (an enrolled kiosk device)."""

    def __init__(self, base_url: str):
        self.base = base_url
        jar = http.cookiejar.CookieJar()
        host = urllib.parse.urlsplit(base_url).hostname
        jar.set_cookie(
            http.cookiejar.Cookie(0, "kiosk_device", TEST_DEVICE_SECRET, None, False, host, False, False, "/", True, False, None, False, None, None, {})
        )
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        self.token = ""

    def get(self, path: str) -> str:
        html = self.opener.open(self.base + path, timeout=30).read().decode()
        match = CSRF_META.search(html)
        if match:
            self.token = match.group(1)
        return html

    def post(self, path: str, data: dict) -> tuple[int, str]:
        request = urllib.request.Request(
            self.base + path, data=urllib.parse.urlencode(data).encode(), headers={"X-CSRFToken": self.token, "HX-Request": "true"}
        )
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def scan_card(self, token: str) -> None:
        self.get("/points")
        status, _ = self.post("/scan", {"code": token})
        assert status == 200

    def request_key(self, reward_id: int) -> str:
        return re.search(r'name="request_key" value="(\w+)"', self.get(f"/points/rewards/{reward_id}")).group(1)


def at_once(calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


KIOSK = [sys.executable, "-c", "from kiosk.cli import main; main()"]


def run(instance: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | {"KIOSK_INSTANCE_PATH": str(instance)}
    return subprocess.run([*KIOSK, *args], env=env, input=input, capture_output=True, text=True, timeout=120, check=False)


def token_for(session, member_id) -> str:
    session.rollback()
    member = session.get(Member, member_id)
    return card_token(member, TokenSigner(TEST_SIGNING_KEY, purpose="member-card"), "XH-CY-CY1")


def scan(client, code):
    return post(client, "/scan", {"code": code}, htmx=True, token_from="/points")


def kiosk_post(client, path, data):
    # The token comes from 我的积分: visiting home (/) would end the card's visit.
    return post(client, path, data, htmx=True, token_from="/points")


ZONE = ZoneInfo("Asia/Shanghai")


def now_local() -> datetime:
    return datetime.now(ZONE)


def create_activity(client, **fields):
    start = now_local().replace(second=0, microsecond=0) - timedelta(minutes=10)
    data = {
        "title": "书法课",
        "category": "culture",
        "place": "二楼活动室",
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "points": "5",
        "policy": "once",
        "opens_minutes_before": "30",
        "closes_minutes_after": "30",
    } | fields
    data["csrf_token"] = csrf_token(client, "/staff/activities/new")
    return client.post("/staff/activities/new", data=data)


def activity_id(response) -> int:
    return int(re.search(r"/staff/activities/(\d+)", response.headers["Location"]).group(1))


def open_activity_now(
    session,
    *,
    title: str = "书法课",
    category: str = "culture",
    place: str = "二楼活动室",
    points: str = "5",
    policy: str = "once",
    capacity: str = "",
    minutes_ago: int = 5,
    hours: int = 2,
):
    """An activity whose check-in is open now (started ``minutes_ago``, lasting ``hours``), saved
    through the service as staff would; returns the Activity."""
    from kiosk.checkin.services import save_activity

    zone = ZoneInfo("Asia/Shanghai")
    now = datetime.now(zone).replace(second=0, microsecond=0)
    return save_activity(
        session,
        None,
        title=title,
        category=category,
        description="",
        place=place,
        starts_at=(now - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M"),
        ends_at=(now + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M"),
        weekly=False,
        repeat_until="",
        capacity=capacity,
        points=points,
        policy=policy,
        zone=zone,
        actor=None,
    )


def run_server(server) -> Callable[[], None]:
    """Run a waitress server (waitress.create_server, kiosk.serving.create_server) on a daemon
    thread; returns stop(), which ends it (its workers, its socket, its open connections)."""
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except (OSError, ValueError):
            # Closing the socket under waitress's select() is how the test stops it.
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        server.task_dispatcher.shutdown()
        server.close()
        # Keep-alive connections keep waitress's loop running; closing them ends it.
        for channel in list(server._map.values()):
            channel.close()
        thread.join(timeout=5)

    return stop
