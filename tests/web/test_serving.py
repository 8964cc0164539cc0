"""`kiosk serve`'s waitress channel (kiosk.serving.KioskChannel): the socket loop leaves a
connection out of select()'s write set while a worker is writing its response, and bytes a
worker could not send still reach the client. Its task queue (KioskTaskDispatcher) writes the
"Task queue depth" warning once a minute, outside the queue's lock.

Checked to fail without the safeguard: with waitress's own HTTPChannel.writable the first test
fails (the connection counts as writable while the worker holds the buffer lock: the loop's
busy spin, docs/benchmarks.md "Booking, part 7"); with waitress's own ThreadedTaskDispatcher
the queue tests fail (a line per queued request, written under the lock: "Booking, part 9b").
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from waitress.adjustments import Adjustments

from kiosk import serving
from kiosk.serving import KioskChannel, KioskTaskDispatcher, create_server
from tests.helpers import run_server


class _Server:
    def __init__(self) -> None:
        self.active_channels: dict = {}
        self.pulls = 0

    def pull_trigger(self) -> None:
        self.pulls += 1

    def add_task(self, channel) -> None:
        pass


def _channel() -> tuple[KioskChannel, socket.socket]:
    ours, theirs = socket.socketpair()
    channel = KioskChannel(_Server(), ours, ("127.0.0.1", 1), Adjustments(), map={})
    return channel, theirs


def test_a_connection_is_not_writable_while_its_worker_holds_the_buffer():
    channel, peer = _channel()
    try:
        channel.requests = [object()]  # a request being served
        channel.total_outbufs_len = 10  # bytes appended, not yet sent
        held, release = threading.Event(), threading.Event()

        def worker() -> None:
            with channel.outbuf_lock:
                held.set()
                release.wait(5)

        thread = threading.Thread(target=worker)
        thread.start()
        held.wait(5)
        assert not channel.writable()
        release.set()
        thread.join(5)
        assert channel.writable()  # the lock is free: the loop may send what is left
        channel.requests = []
        assert channel.writable()
        channel.total_outbufs_len = 0
        assert not channel.writable()
        channel.close_when_flushed = True
        assert channel.writable()
    finally:
        channel.close()
        peer.close()


def test_bytes_left_over_by_a_worker_wake_the_loop():
    channel, peer = _channel()
    try:
        channel.requests = [object()]
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        channel.write_soon(b"x" * (8 * 1024 * 1024))  # more than the socket takes at once
        assert channel.total_outbufs_len > 0
        assert channel.server.pulls >= 2  # waitress's own pull under the lock, and ours after it
    finally:
        channel.close()
        peer.close()


def test_a_response_larger_than_the_socket_buffers_arrives_whole():
    body = bytes(range(256)) * (16 * 1024)  # 2 × 4 MiB: more than the socket takes at once

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body) * 2))])
        return [body, body]

    config = {"SERVE_CONNECTION_LIMIT": 100, "SERVE_CHANNEL_TIMEOUT": 30, "MAX_CONTENT_LENGTH": 1024}
    server = create_server(app, host="127.0.0.1", port=0, threads=2, config=config)
    server.adj.asyncore_loop_timeout = 0.2
    stop = run_server(server)
    try:
        with socket.create_connection(("127.0.0.1", server.effective_port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            received = bytearray()
            header = b""
            while True:
                chunk = client.recv(65536)
                assert chunk, "connection closed before the whole body"
                received += chunk
                if not header and b"\r\n\r\n" in received:
                    header, _, rest = bytes(received).partition(b"\r\n\r\n")
                    received = bytearray(rest)
                if header and len(received) >= len(body) * 2:
                    break
        assert header.startswith(b"HTTP/1.1 200")
        assert bytes(received) == body + body
    finally:
        stop()


class _Task:
    def __init__(self) -> None:
        self.served = threading.Event()

    def service(self) -> None:
        self.served.set()

    def cancel(self) -> None:
        pass


def _queue_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "waitress.queue"]


def test_requests_waiting_for_a_worker_are_logged_once_a_minute(caplog, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(serving.time, "monotonic", lambda: clock[0])
    dispatcher = KioskTaskDispatcher()  # no worker threads: every request waits
    caplog.set_level(logging.WARNING, logger="waitress.queue")
    for _ in range(100):
        dispatcher.add_task(_Task())
    assert len(dispatcher.queue) == 100  # queued as waitress queues them
    assert _queue_lines(caplog) == ["Task queue depth is 1 (deepest 1; 1 requests waited for a worker)"]
    clock[0] += 59
    dispatcher.add_task(_Task())
    assert len(_queue_lines(caplog)) == 1
    clock[0] += 1
    dispatcher.add_task(_Task())
    assert _queue_lines(caplog)[1] == "Task queue depth is 102 (deepest 102; 101 requests waited for a worker in the last 60 s)"


def test_the_queue_line_is_written_outside_the_queues_lock(caplog):
    dispatcher = KioskTaskDispatcher()
    held: list[bool] = []

    class Probe(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            held.append(dispatcher.lock.locked())

    probe = Probe()
    logging.getLogger("waitress.queue").addHandler(probe)
    try:
        caplog.set_level(logging.WARNING, logger="waitress.queue")
        dispatcher.add_task(_Task())
    finally:
        logging.getLogger("waitress.queue").removeHandler(probe)
    assert held == [False]  # workers taking their next request are not kept waiting on the write


def test_queued_requests_are_served_and_an_idle_worker_logs_nothing(caplog):
    dispatcher = KioskTaskDispatcher()
    dispatcher.set_thread_count(1)
    caplog.set_level(logging.WARNING, logger="waitress.queue")
    try:
        for _ in range(3):
            deadline = time.monotonic() + 5
            while dispatcher.active_count and time.monotonic() < deadline:  # the worker back waiting
                time.sleep(0.001)
            task = _Task()
            dispatcher.add_task(task)
            assert task.served.wait(5)
    finally:
        dispatcher.shutdown(timeout=5)
    assert _queue_lines(caplog) == []  # each found the worker idle


def test_create_server_queues_on_the_kiosk_dispatcher():
    config = {"SERVE_CONNECTION_LIMIT": 100, "SERVE_CHANNEL_TIMEOUT": 30, "MAX_CONTENT_LENGTH": 1024}
    server = create_server(lambda environ, start_response: [], host="127.0.0.1", port=0, threads=3, config=config)
    try:
        assert isinstance(server.task_dispatcher, KioskTaskDispatcher)
        assert len(server.task_dispatcher.threads) == 3
    finally:
        server.close()
