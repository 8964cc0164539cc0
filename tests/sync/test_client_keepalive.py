"""`kiosk sync` keeps one connection to the hub open between requests (HTTP/1.1 keep-alive)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from kiosk.sync import protocol
from kiosk.sync.client import HubClient, HubUnreachable
from tests.sync.helpers import enrol, enrolment_code, exactly_once, fill_outbox, sync


class CountingClient(HubClient):
    """A HubClient that counts the connections it opens (real sockets, real HTTP)."""

    connections = 0

    def _connect(self):
        if self._connection is None:
            self.connections += 1
        return super()._connect()


def test_a_sync_of_several_batches_uses_one_connection_to_the_hub(hub_process, hub_app, hub_sql, make_kiosk):
    kiosk = make_kiosk()
    enrolled = enrol(kiosk, hub_process.url, enrolment_code(hub_app, "XH-SP-WJC"))
    fill_outbox(kiosk, 1_200)
    hub_client = CountingClient(hub_process.url, enrolled.key_id, enrolled.key_secret, app_version="test")
    report = sync(kiosk, hub_client=hub_client)
    assert report.ok, report.error
    assert report.pushed == 1_200  # hello, three batches and the pull on one connection
    assert hub_client.connections == 1
    assert exactly_once(hub_sql, "XH-SP-WJC") == (1_200, 1_200, 1_200, 1_200)


@contextmanager
def _server(*, drop_after_answer: bool) -> Iterator[tuple[str, list]]:
    """A small HTTP/1.1 server answering {"ok": true}; it records (connection number, nonce) per
    request. ``drop_after_answer``: it closes each connection after one answer without saying
    so, as a hub does with a connection left idle past its keep-alive time."""
    seen: list[tuple[int, str]] = []
    count = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            count[0] += 1
            self.number = count[0]

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append((self.number, self.headers.get(protocol.HEADER_NONCE, "")))
            body = json.dumps({"ok": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            if drop_after_answer:
                self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("drop_after_answer", "connections"),
    [
        (False, [1, 1, 1]),  # requests share the kept-alive connection
        (True, [1, 2, 3]),  # each request after the first found its connection closed: a new one, signed afresh
    ],
)
def test_requests_share_a_kept_alive_connection_and_replace_a_dropped_one(drop_after_answer, connections):
    with _server(drop_after_answer=drop_after_answer) as (url, seen):
        client = HubClient(url, "k_test", "secret", app_version="test")
        for _ in range(3):
            assert client.request("POST", protocol.API_PREFIX + "/hello").data == {"ok": True}
    assert [number for number, _ in seen] == connections
    assert len({nonce for _, nonce in seen}) == 3


def test_a_hub_that_is_down_is_unreachable_not_retried_forever():
    with _server(drop_after_answer=False) as (url, _):
        pass  # stopped: nothing listens on the port any more
    client = HubClient(url, "k_test", "secret", app_version="test")
    with pytest.raises(HubUnreachable):
        client.request("POST", protocol.API_PREFIX + "/hello")
