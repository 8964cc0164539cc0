"""systemd readiness and watchdog for `kiosk serve` (deploy/centre-kiosk.service: Type=notify,
WatchdogSec=).

The documented sd_notify protocol (man sd_notify, "Notes"): one datagram of ``KEY=VALUE`` lines
to the unix socket named by NOTIFY_SOCKET (a leading ``@`` is the abstract namespace). No
library: the protocol is these few lines, and none of the packages for it is kept up better.

- READY=1 once the server's socket listens (before waitress's loop starts: connections queue in
  the backlog meanwhile);
- WATCHDOG=1 every WATCHDOG_USEC / 2, but only after the server really answered /healthz over
  its own socket within that time: a 200 needs a free worker thread, the app and a database
  query. A wedged server (every thread stuck, the database failing) stops the pings, and systemd
  kills and restarts it after WatchdogSec;
- STOPPING=1 when the loop ends by itself (Ctrl-C); on SIGTERM the process just ends, as before.
Without NOTIFY_SOCKET (run by hand, in tests, under another supervisor) nothing is sent.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger("kiosk.ops.watchdog")


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` to the service manager; False when there is none (or it is gone)."""
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "@/":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(target)
            sock.sendall(message.encode())
        return True
    except OSError as error:
        log.warning("systemd notify failed: %s", error)
        return False


def interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half of WatchdogSec), or None when no watchdog is asked for."""
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


def http_health(host: str, port: int, timeout: float) -> Callable[[], bool]:
    """A check that GETs /healthz from the server itself: True only for a 200 within ``timeout``."""
    if host in {"0.0.0.0", "", "::"}:
        host = "127.0.0.1"

    def check() -> bool:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.request("GET", "/healthz", headers={"User-Agent": "centre-kiosk-watchdog"})
            response = connection.getresponse()
            response.read()
            return response.status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    return check


class Watchdog:
    """The pinging thread: check, then ping only if the check passed; stop() ends it."""

    def __init__(self, check: Callable[[], bool], every: float, environ: Mapping[str, str] | None = None):
        self.check, self.every, self.environ = check, every, environ
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="kiosk-watchdog", daemon=True)
        self.failures = 0

    def beat(self) -> bool:
        """One round: True when the server answered and WATCHDOG=1 went out."""
        if self.check():
            if self.failures:
                log.warning("watchdog: the server answers again after %d failed health checks", self.failures)
            self.failures = 0
            return notify("WATCHDOG=1", self.environ)
        self.failures += 1
        log.error("watchdog: health check failed (%d in a row); no ping, systemd restarts the server after WatchdogSec", self.failures)
        return False

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            self.beat()

    def start(self) -> Watchdog:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()


def serve_notified(server, host: str, port: int) -> None:
    """Run a waitress server that is already listening, telling systemd (when it asks)."""
    every = interval()
    watchdog = Watchdog(http_health(host, port, timeout=every), every).start() if every else None
    notify(f"READY=1\nSTATUS=listening on {host}:{port}\nMAINPID={os.getpid()}")
    try:
        server.run()
    finally:
        if watchdog is not None:
            watchdog.stop()
        notify("STOPPING=1")
