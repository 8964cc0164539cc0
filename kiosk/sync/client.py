"""The kiosk's HTTP client for the hub (standard library only: one request at a time).

One client keeps one connection to the hub open between requests (HTTP/1.1 keep-alive), so a
`kiosk sync` of many batches connects once instead of once a batch, as long as the hub keeps
it open (`Connection: close`, or an idle connection the hub dropped, means a new one). Through
a proxy (http_proxy / https_proxy in the environment) requests go through urllib as before.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiosk.sync import protocol


class HubUnreachable(Exception):
    """The network or the hub failed (retry later): refused connection, timeout, 5xx."""


@dataclass
class HubAnswer:
    status: int
    data: dict[str, Any]

    @property
    def error(self) -> str:
        return str(self.data.get("error", ""))


# A kept-alive connection the hub closed while it was idle fails like this on its next request,
# before the hub read any of it: the request goes again on a new connection (signed afresh).
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class HubClient:
    def __init__(
        self, base_url: str, key_id: str = "", secret: str = "", *, app_version: str = "", timeout: float = 60, clock: Callable[[], float] = time.time
    ):
        self.base_url = base_url.rstrip("/")
        self.key_id, self.secret = key_id, secret
        self.app_version = app_version
        self.timeout = timeout
        self.clock = clock
        self._connection: http.client.HTTPConnection | None = None
        parts = urllib.parse.urlsplit(self.base_url)
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path
        proxied = parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname or "")
        self.keep_alive = parts.scheme in ("http", "https") and not proxied

    def request(self, method: str, path: str, body: bytes = b"", *, signed: bool = True, headers: dict[str, str] | None = None) -> HubAnswer:
        """``path`` starts with API_PREFIX (and may carry a query string)."""
        if not self.keep_alive:
            return self._urllib(method, path, body, self._headers(method, path, body, signed, headers))
        for attempt in (1, 2):
            reused = self._connection is not None
            connection = self._connect()
            try:
                connection.request(
                    method, self._prefix + path, body=body if method != "GET" else None, headers=self._headers(method, path, body, signed, headers)
                )
                response = connection.getresponse()
                status, raw = response.status, response.read()
            except _STALE as error:
                self.close()
                if reused and attempt == 1:
                    continue
                raise HubUnreachable(str(error) or type(error).__name__) from None
            except (OSError, TimeoutError, http.client.HTTPException) as error:
                self.close()
                raise HubUnreachable(str(error) or type(error).__name__) from None
            if response.will_close:
                self.close()
            answer = HubAnswer(status, _json(raw))
            if status >= 500 or status == 429:
                raise HubUnreachable(f"hub answered {status}")
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._connection = kind(self._netloc, timeout=self.timeout)
        return self._connection

    def _headers(self, method: str, path: str, body: bytes, signed: bool, extra: dict[str, str] | None) -> dict[str, str]:
        all_headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": f"centre-kiosk/{self.app_version}"}
        all_headers[protocol.HEADER_PROTOCOL] = str(protocol.PROTOCOL_VERSION)
        if signed:
            all_headers.update(protocol.signed_headers(self.key_id, self.secret, method, path, body, now=self.clock(), app_version=self.app_version))
        all_headers.update(extra or {})
        return all_headers

    def _urllib(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> HubAnswer:
        request = urllib.request.Request(self.base_url + path, data=body if method != "GET" else None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return HubAnswer(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            answer = HubAnswer(error.code, _json(error.read()))
            if error.code >= 500 or error.code == 429:
                raise HubUnreachable(f"hub answered {error.code}") from None
            return answer
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise HubUnreachable(str(getattr(error, "reason", error))) from None

    def post_json(self, path: str, data: dict[str, Any], *, signed: bool = True) -> HubAnswer:
        return self.request("POST", path, json.dumps(data).encode(), signed=signed)

    def push(self, body: bytes) -> HubAnswer:
        return self.request("POST", protocol.API_PREFIX + "/events", body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    def pull(self, cursor: int) -> HubAnswer:
        return self.request("GET", f"{protocol.API_PREFIX}/pull?{urllib.parse.urlencode({'cursor': cursor})}")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {"error": "not_json"}
    return value if isinstance(value, dict) else {"error": "not_json"}
