"""Shared fixtures: a real SQLite database at the latest migration for every test."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings

from kiosk.extensions import db
from kiosk.serving import create_server
from tests.helpers import TEST_SECRET, TEST_SIGNING_KEY, copy_database, enrol_test_device, make_app, open_activity_now, run_server

# No timed assertions (README): Hypothesis's default deadline is 200 ms per example, a timed
# assertion that a loaded machine can fail (a token property test failed once while CI ran
# beside it and passed alone). Every property test runs without one.
settings.register_profile("kiosk", deadline=None)
settings.load_profile("kiosk")


@pytest.fixture(autouse=True, scope="session")
def _no_kiosk_environment() -> Iterator[None]:
    """A developer's KIOSK_* variables must not leak into tests."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("KIOSK_")}
    for key in saved:
        del os.environ[key]
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory) -> Path:
    """Run every migration once; each test gets a copy (SQLite's backup API, WAL-safe)."""
    from flask_migrate import upgrade

    path = tmp_path_factory.mktemp("migrated")
    app = make_app(path)
    with app.app_context():
        upgrade()
        enrol_test_device(db.session)
        db.session.commit()
        db.engine.dispose()
    return path / "kiosk.sqlite3"


@pytest.fixture
def instance_path(tmp_path: Path, migrated_database: Path) -> Path:
    path = tmp_path / "instance"
    path.mkdir()
    copy_database(migrated_database, path / "kiosk.sqlite3")
    return path


@pytest.fixture
def app(instance_path: Path) -> Iterator[Flask]:
    app = make_app(instance_path)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def session(app: Flask):
    """The SQLAlchemy session services take, inside an app context (no request)."""
    return db.session


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def open_activity(session):
    """An activity open for check-in now (its screen has the kiosk's phone keypad)."""
    activity = open_activity_now(session, minutes_ago=10)
    session.commit()
    return activity


@pytest.fixture
def make_staff(session):
    from kiosk.staff.services import create_staff_user

    def make(username: str = "wang.li", password: str = "correct-horse-1", role: str = "staff"):
        user = create_staff_user(session, username, password, role, display_name="王丽")
        session.commit()
        return user

    return make


@pytest.fixture
def serve(tmp_path: Path, migrated_database: Path) -> Iterator[Callable[..., str]]:
    """serve(setup=None, demo=True, **config) starts a kiosk under waitress on a free loopback
    port and returns its base URL. ``setup(session)`` seeds data before the first request."""
    servers = []

    def start(setup: Callable | None = None, demo: bool = True, **config) -> str:
        instance = tmp_path / f"served{len(servers)}"
        instance.mkdir()
        copy_database(migrated_database, instance / "kiosk.sqlite3")
        app = make_app(instance, **config)
        with app.app_context():
            if demo:
                from kiosk.demo import load_demo

                load_demo(db.session)
            if setup is not None:
                setup(db.session)
            db.session.commit()
            db.session.remove()
        # The server `kiosk serve` runs (its options, KioskChannel); a short poll lets the test
        # stop it quickly at teardown.
        server = create_server(app, host="127.0.0.1", port=0, threads=8, config=app.config, asyncore_loop_timeout=0.2)
        servers.append(run_server(server))
        return f"http://127.0.0.1:{server.effective_port}"

    yield start
    for stop in servers:
        stop()


class ServedKiosk(NamedTuple):
    url: str
    database: Path

    def count(self, table: str) -> int:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def serve_process(tmp_path: Path, migrated_database: Path) -> Iterator[Callable[..., str]]:
    """serve_process(setup=None, share=None, **config) runs `kiosk serve` as its own process, as on
    a kiosk PC, and returns its base URL (``share=``: another process on that kiosk's database). Load tests use this one: clients in the test process would
    otherwise share the server's GIL and measure that instead of the kiosk. The answer has
    .url and .database (the SQLite file, to count what was written)."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    processes = []

    def start(setup: Callable | None = None, *, share: ServedKiosk | None = None, **config) -> ServedKiosk:
        if share is not None:  # a second server process on the first one's database file
            instance = share.database.parent
        else:
            instance = tmp_path / f"process{len(processes)}"
            instance.mkdir()
            copy_database(migrated_database, instance / "kiosk.sqlite3")
            app = make_app(instance)
            with app.app_context():
                if setup is not None:
                    setup(db.session)
                db.session.commit()
                db.session.remove()
                db.engine.dispose()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
        env |= {"KIOSK_INSTANCE_PATH": str(instance), "KIOSK_SECRET_KEY": TEST_SECRET, "KIOSK_SIGNING_KEY": TEST_SIGNING_KEY}
        env |= {"KIOSK_DISTRICT_KEY": "test-district-key"} | {f"KIOSK_{k}": str(v) for k, v in config.items()}
        process = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                return ServedKiosk(base, instance / "kiosk.sqlite3")
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("kiosk did not start")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def pytest_sessionfinish(session, exitstatus):
    """In CI (CI=true) a skipped test is a failure: every test must run there."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") == "true" and skipped:
        reporter.write_line(f"CI: {skipped} test(s) skipped; every test must run in CI.", red=True)
        session.exitstatus = 1
