"""systemd's notify protocol (deploy/centre-kiosk.service: Type=notify, WatchdogSec=): `kiosk
serve` says READY=1 once it listens and WATCHDOG=1 only while it really answers /healthz.

The test plays systemd: it owns a unix datagram socket, passes it as NOTIFY_SOCKET with
WATCHDOG_USEC, and reads what arrives. To wedge the server, another process holds the
database's write lock while check-ins occupy every worker thread (they wait on the lock): the
server cannot answer, so the pings must stop; when the lock is released they come back.
Shown to fail without the safeguard: a Watchdog.beat() that pings without checking (a plain
timer) sends WATCHDOG=1 through the wedge and the second test fails.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest

from kiosk.ops.watchdog import Watchdog, interval, notify
from tests.hardening.kiosk_process import Browser, KioskProcess, seeded_instance
from tests.helpers import TEST_DEVICE_SECRET, open_activity_now

WATCHDOG_USEC = 2_000_000  # WatchdogSec=2: a ping every second


class Systemd:
    """The service manager's end of NOTIFY_SOCKET (abstract namespace: no path length limit)."""

    def __init__(self) -> None:
        self.name = f"@centre-kiosk-test-{os.getpid()}-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])

    def environ(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.name, "WATCHDOG_USEC": str(WATCHDOG_USEC)}

    def messages(self, seconds: float) -> list[str]:
        """Every datagram that arrives within ``seconds``."""
        got, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                got.append(self.sock.recv(4096).decode())
            except TimeoutError:
                break
        return got

    def wait_for(self, line: str, seconds: float = 60) -> list[str]:
        """Datagrams up to and including the first holding ``line`` (fails after ``seconds``)."""
        got, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            got.append(message)
            if line in message.splitlines():
                return got
        raise AssertionError(f"no {line} from the server; got {got}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd() -> Iterator[Systemd]:
    manager = Systemd()
    yield manager
    manager.close()


@pytest.fixture
def instance(tmp_path, migrated_database):
    activity = seeded_instance(tmp_path, migrated_database, lambda session: open_activity_now(session, title="晨练", points="1", policy="repeatable").id)
    return tmp_path, activity


def test_ready_then_watchdog_pings_while_the_server_answers(instance, systemd):
    path, _activity = instance
    server = KioskProcess(path, environ=systemd.environ()).start()
    try:
        first = systemd.wait_for("READY=1")
        assert not any("WATCHDOG=1" in m for m in first), "a ping before READY=1"
        systemd.wait_for("WATCHDOG=1")
        systemd.wait_for("WATCHDOG=1")
    finally:
        server.stop()


def test_watchdog_pings_stop_while_the_server_cannot_answer_and_resume_after(instance, systemd):
    path, activity = instance
    threads = 2
    server = KioskProcess(path, threads=threads, environ=systemd.environ(), RATELIMIT_ENABLED="false").start()
    try:
        systemd.wait_for("READY=1")
        systemd.wait_for("WATCHDOG=1")
        kiosks = [Browser(server.url, TEST_DEVICE_SECRET) for _ in range(threads)]
        for kiosk in kiosks:
            kiosk.request(f"/checkin/{activity}")  # the CSRF token, before the lock is taken
        # Another process (a hung `kiosk sync`, a stuck backup) holds the write lock.
        holder = sqlite3.connect(server.database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        posts = [
            threading.Thread(target=kiosk.request, args=(f"/checkin/{activity}/phone", {"phone": f"1391234000{i}"}), kwargs={"htmx": True})
            for i, kiosk in enumerate(kiosks)
        ]
        for post in posts:
            post.start()
        systemd.messages(2.5)  # let the check-ins take every thread; drop pings already on the way
        wedged = systemd.messages(5)
        holder.execute("ROLLBACK")
        holder.close()
        assert not any("WATCHDOG=1" in m for m in wedged), f"pinged while the server could not answer: {wedged}"
        systemd.wait_for("WATCHDOG=1")  # answering again: the pings are back
        for post in posts:
            post.join(timeout=60)
    finally:
        server.stop()


def test_a_failed_check_sends_no_ping_and_a_passed_one_does(systemd):
    environ = {"NOTIFY_SOCKET": systemd.name}
    answers = iter([False, False, True])
    dog = Watchdog(lambda: next(answers), every=1.0, environ=environ)
    assert [dog.beat(), dog.beat()] == [False, False]
    assert systemd.messages(0.2) == []
    assert dog.beat() is True
    assert systemd.messages(1) == ["WATCHDOG=1"]


def test_no_notify_socket_no_message_and_the_interval_is_half_watchdogsec():
    assert notify("READY=1", {}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": "relative/path"}) is False
    assert interval({}) is None
    assert interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None  # meant for another process
