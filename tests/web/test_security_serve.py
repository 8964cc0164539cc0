"""`kiosk serve` keeps answering while many idle connections are open (issue 8; docs/security.md).

Checked to fail without the safeguard: with waitress's defaults (connection_limit=100, as
before kiosk.serving.waitress_options), the request behind 150 idle sockets timed out.
"""

from __future__ import annotations

import socket
import time
import urllib.request
from urllib.parse import urlsplit


def test_150_idle_connections_do_not_starve_a_normal_request(serve_process):
    kiosk = serve_process()
    parts = urlsplit(kiosk.url)
    idle = []
    try:
        for _ in range(150):
            idle.append(socket.create_connection((parts.hostname, parts.port), timeout=5))
        time.sleep(0.5)  # let waitress accept them all
        started = time.monotonic()
        with urllib.request.urlopen(kiosk.url + "/healthz", timeout=5) as response:
            assert response.status == 200
        assert time.monotonic() - started < 1.0
    finally:
        for sock in idle:
            sock.close()
