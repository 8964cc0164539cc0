"""waitress as `kiosk serve` runs it: its connection settings and its channel.

waitress's main thread runs the socket loop: every turn it asks each open connection whether
it is readable and writable (Python calls, O(connections)), then waits in select(). A
connection counts as writable while its response is being written: the worker thread appends
the bytes to the connection's buffer and sends them itself (waitress's send_bytes is 1), under
the buffer's lock. select() then returns at once, the main thread cannot take the lock, does
nothing and goes round again, until the worker — waiting for the GIL the main thread keeps
taking back — lets go. Under load that spin was most of the server's CPU: at 100 connections
(8 worker threads busy) the main thread spent 2.3–4.3 ms of CPU a request against 0.3 ms at 20,
~7,000 loop turns a second for ~400 requests (bench/writelock.py, docs/benchmarks.md "Booking,
part 7"). KioskChannel leaves such a connection out of the write set while a worker holds its
buffer lock; the worker flushes on its own, and pulls the loop's trigger whenever bytes are left
over after it let the lock go, so the main thread sends them as the socket drains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer


class KioskChannel(HTTPChannel):
    def writable(self) -> bool:
        if self.requests and self.total_outbufs_len and not (self.will_close or self.close_when_flushed):
            # A request is being served: if its worker holds the buffer lock it is writing
            # (and flushing) right now; asking select() about this socket would only spin.
            lock = self.outbuf_lock
            if not lock.acquire(False):
                return False
            lock.release()
        return bool(super().writable())

    def write_soon(self, data: Any) -> int:
        written = super().write_soon(data)
        # waitress pulls the trigger for leftover bytes while it still holds the lock, when
        # writable() above says no; once more now that the lock is free, so the loop sends them.
        if self.total_outbufs_len and self.connected:
            self.server.pull_trigger()
        return written


def waitress_options(config: Mapping[str, Any]) -> dict:
    """Connection handling set deliberately (docs/deploy.md, docs/security.md): waitress's
    default of 100 connections let 100 idle sockets from one laptop starve the kiosk. Idle
    connections cost a file descriptor each, not a thread, so allow many and close idle ones
    soon; requests still queue on SERVE_THREADS workers."""
    return {
        "connection_limit": int(config["SERVE_CONNECTION_LIMIT"]),
        "channel_timeout": int(config["SERVE_CHANNEL_TIMEOUT"]),
        "cleanup_interval": max(1, int(config["SERVE_CHANNEL_TIMEOUT"]) // 2),
        "backlog": 1024,
        "max_request_body_size": int(config["MAX_CONTENT_LENGTH"]) + 64 * 1024,
        "max_request_header_size": 64 * 1024,
    }


def create_server(app: Any, *, host: str, port: int, threads: int, config: Mapping[str, Any], **options: Any) -> Any:
    """waitress.create_server with the kiosk's options (``options``: any other waitress
    setting, e.g. the tests' short loop timeout), its listening sockets opening KioskChannel
    connections."""
    import waitress

    socket_map: dict = {}
    server = waitress.create_server(app, map=socket_map, host=host, port=port, threads=threads, ident="centre-kiosk", **(waitress_options(config) | options))
    for dispatcher in socket_map.values():
        if isinstance(dispatcher, BaseWSGIServer):  # one per listening socket
            dispatcher.channel_class = KioskChannel
    return server
