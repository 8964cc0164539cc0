"""waitress as `kiosk serve` runs it: its connection settings, its channel and its task queue.

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

import time
from collections.abc import Mapping
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ThreadedTaskDispatcher


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


QUEUE_LOG_INTERVAL = 60.0  # seconds between two "Task queue depth" lines


class KioskTaskDispatcher(ThreadedTaskDispatcher):
    """waitress's task queue, its "Task queue depth" warning written at most once a minute.

    waitress writes that line for every request that finds no idle worker, from the socket
    loop's thread and while holding the queue's lock: at 20 busy connections on 8 threads that
    is most requests, each one formatted, masked and written to kiosk.log and standard error
    while the workers that finish a request wait on that lock for their next one
    (docs/benchmarks.md "Booking, part 9b"). Here the request is queued as waitress does, and
    the line, written after the lock is let go, says the deepest queue and how many requests
    waited since the last line: an operator still sees that the kiosk was saturated."""

    def __init__(self) -> None:
        super().__init__()
        self._waited = 0  # requests queued behind busy workers since the last line
        self._deepest = 0
        self._logged_at: float | None = None

    def add_task(self, task: Any) -> None:
        with self.lock:
            self.queue.append(task)
            self.queue_cv.notify()
            depth = len(self.queue) - (len(self.threads) - self.stop_count - self.active_count)
        if depth > 0:
            self._note_depth(depth)

    def _note_depth(self, depth: int) -> None:
        # Called from the socket loop's thread only (waitress queues requests there).
        self._waited += 1
        self._deepest = max(self._deepest, depth)
        now = time.monotonic()
        if self._logged_at is None or now - self._logged_at >= QUEUE_LOG_INTERVAL:
            since = "" if self._logged_at is None else f" in the last {now - self._logged_at:.0f} s"
            self.queue_logger.warning("Task queue depth is %d (deepest %d; %d requests waited for a worker%s)", depth, self._deepest, self._waited, since)
            self._logged_at, self._waited, self._deepest = now, 0, 0


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
    connections and its requests queued on a KioskTaskDispatcher."""
    import waitress

    socket_map: dict = {}
    tasks = KioskTaskDispatcher()
    tasks.set_thread_count(threads)
    try:
        server = waitress.create_server(
            app, map=socket_map, _dispatcher=tasks, host=host, port=port, threads=threads, ident="centre-kiosk", **(waitress_options(config) | options)
        )
    except BaseException:
        tasks.shutdown(timeout=1)  # the port taken: the threads started above would outlive the error
        raise
    for dispatcher in socket_map.values():
        if isinstance(dispatcher, BaseWSGIServer):  # one per listening socket
            dispatcher.channel_class = KioskChannel
    return server
