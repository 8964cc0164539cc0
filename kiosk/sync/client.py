"""The kiosk's HTTP client for the hub (standard library only: one request at a time)."""

from __future__ import annotations

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


class HubClient:
    def __init__(
        self, base_url: str, key_id: str = "", secret: str = "", *, app_version: str = "", timeout: float = 60, clock: Callable[[], float] = time.time
    ):
        self.base_url = base_url.rstrip("/")
        self.key_id, self.secret = key_id, secret
        self.app_version = app_version
        self.timeout = timeout
        self.clock = clock

    def request(self, method: str, path: str, body: bytes = b"", *, signed: bool = True, headers: dict[str, str] | None = None) -> HubAnswer:
        """``path`` starts with API_PREFIX (and may carry a query string)."""
        all_headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": f"centre-kiosk/{self.app_version}"}
        all_headers[protocol.HEADER_PROTOCOL] = str(protocol.PROTOCOL_VERSION)
        if signed:
            all_headers.update(protocol.signed_headers(self.key_id, self.secret, method, path, body, now=self.clock(), app_version=self.app_version))
        all_headers.update(headers or {})
        request = urllib.request.Request(self.base_url + path, data=body if method != "GET" else None, method=method, headers=all_headers)
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
