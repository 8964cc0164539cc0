"""PostgreSQL and hub fixtures for the sync tests.

PostgreSQL comes from scripts/postgres.sh: `make test` starts one throwaway cluster for the
whole run and passes TEST_POSTGRES_URL; a bare `pytest tests/sync` starts its own here (and
stops it at the end). Each test module gets a fresh database, copied from a template that the
hub's migrations built once per run (so the migrations themselves run on PostgreSQL).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from kiosk.config import PROJECT_ROOT
from kiosk.extensions import db
from kiosk.sync.protocol import new_box_keypair
from tests.helpers import TEST_SECRET, TEST_SIGNING_KEY, copy_database, make_app

HUB_BOX_KEY, HUB_PUBLIC_KEY = new_box_keypair()
HUB_PSEUDONYM_KEY = "test-hub-pseudonym-key"
TEMPLATE = "kiosk_hub_template"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = os.environ.get("TEST_POSTGRES_URL")
    if url:
        yield url
        return
    directory = tempfile.mkdtemp(prefix="kiosk-pg.")
    script = str(PROJECT_ROOT / "scripts" / "postgres.sh")
    url = subprocess.run(["bash", script, "start", directory], capture_output=True, text=True, check=True).stdout.strip()
    try:
        yield url
    finally:
        subprocess.run(["bash", script, "stop", directory], check=False)


def _admin(url: str) -> psycopg.Connection:
    parsed = make_url(url)
    return psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, dbname="postgres", autocommit=True)


def database_url(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def hub_config(url: str) -> dict:
    return {"ROLE": "hub", "DATABASE_URL": url, "HUB_BOX_KEY": HUB_BOX_KEY, "HUB_PSEUDONYM_KEY": HUB_PSEUDONYM_KEY}


@pytest.fixture(scope="session")
def hub_template(postgres_url: str, tmp_path_factory) -> Iterator[str]:
    """A database at the latest migration, run by the hub on PostgreSQL; copied per module.
    Named for this fixture alone: tests/hardening has its own, and pytest-xdist's workers
    (`make test`) share the cluster, where one's DROP would meet the other's copying."""
    from flask_migrate import upgrade

    template = f"{TEMPLATE}_{uuid.uuid4().hex[:12]}"
    with _admin(postgres_url) as admin:
        admin.execute(f"CREATE DATABASE {template}")
    app = make_app(tmp_path_factory.mktemp("hub-template"), **hub_config(database_url(postgres_url, template)))
    with app.app_context():
        upgrade()
        from kiosk.hub import demo

        demo.load(db.session)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    yield template
    with _admin(postgres_url) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")


def create_database(postgres_url: str, template: str) -> str:
    name = f"hub_{uuid.uuid4().hex[:12]}"
    with _admin(postgres_url) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    return database_url(postgres_url, name)


@pytest.fixture(scope="module")
def hub_database(postgres_url: str, hub_template: str) -> str:
    """A fresh hub database for the test module (Xihu's centres and the demo logins in it)."""
    return create_database(postgres_url, hub_template)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# As deploy/centre-hub.service runs it: threaded workers (4 threads each) keep a kiosk's
# connection open between its batches (the default sync worker closes every one).
HUB_WORKER_ARGS = ("--worker-class", "gthread", "--threads", "4")


@dataclass
class HubProcess:
    """The hub under gunicorn (several workers) in its own process group."""

    database_url: str
    instance: Path
    workers: int = 2
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    extra_env: dict = field(default_factory=dict)
    worker_args: tuple[str, ...] = HUB_WORKER_ARGS

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
        env |= {f"KIOSK_{k}": v for k, v in hub_config(self.database_url).items()}
        env |= {"KIOSK_INSTANCE_PATH": str(self.instance), "KIOSK_SECRET_KEY": TEST_SECRET, "KIOSK_SIGNING_KEY": TEST_SIGNING_KEY}
        return env | self.extra_env

    def start(self) -> HubProcess:
        self.instance.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "gunicorn", "--workers", str(self.workers), *self.worker_args]
        command += ["--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "2"]
        command += ["--error-logfile", str(self.instance / "gunicorn.log"), "kiosk:create_app()"]
        self.process = subprocess.Popen(command, env=self.env(), cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("hub exited: " + (self.instance / "gunicorn.log").read_text(errors="replace")[-2000:])
            try:
                urllib.request.urlopen(self.url + "/api/sync/v1/hub-key", timeout=2).read()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("hub did not start")

    def kill(self) -> None:
        """SIGKILL the whole process group (master and workers): no cleanup, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def hub_process(hub_database: str, tmp_path_factory) -> Iterator[HubProcess]:
    hub = HubProcess(hub_database, tmp_path_factory.mktemp("hub")).start()
    yield hub
    hub.stop()


@pytest.fixture
def hub_app(hub_database: str, tmp_path: Path):
    """The hub app in process (services, pages), on the module's PostgreSQL database."""
    app = make_app(tmp_path / "hub-instance", **hub_config(hub_database))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def hub_sql(hub_database: str):
    """Run SQL on the hub's database directly (counts, tampering, dumps)."""
    parsed = make_url(hub_database)
    with psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True) as connection:
        yield connection


class Kiosk:
    """A kiosk (SQLite, in process) that syncs to a hub over a real socket."""

    def __init__(self, instance: Path):
        self.instance = instance
        self.app = make_app(instance)
        self.database = instance / "kiosk.sqlite3"

    def count(self, sql: str) -> int:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(sql).fetchone()[0]

    def run(self, fn, *args, **kwargs):
        with self.app.app_context():
            try:
                return fn(db.session, *args, **kwargs)
            finally:
                db.session.remove()

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
        return env | {"KIOSK_INSTANCE_PATH": str(self.instance), "KIOSK_SECRET_KEY": TEST_SECRET, "KIOSK_SIGNING_KEY": TEST_SIGNING_KEY}

    def cli_command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "kiosk.cli", *args]

    def cli(self, *args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.cli_command(*args), env=self.env(), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)

    def close(self) -> None:
        with self.app.app_context():
            db.engine.dispose()


@pytest.fixture
def make_kiosk(tmp_path: Path, migrated_database: Path):
    kiosks: list[Kiosk] = []

    def make(name: str = "kiosk") -> Kiosk:
        instance = tmp_path / name
        instance.mkdir()
        copy_database(migrated_database, instance / "kiosk.sqlite3")
        kiosk = Kiosk(instance)
        kiosks.append(kiosk)
        return kiosk

    yield make
    for kiosk in kiosks:
        kiosk.close()


@pytest.fixture
def hub_sql_for():
    connections = []

    def connect(url: str) -> psycopg.Connection:
        parsed = make_url(url)
        connection = psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True)
        connections.append(connection)
        return connection

    yield connect
    for connection in connections:
        connection.close()
