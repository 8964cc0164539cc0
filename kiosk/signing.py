"""Signed tokens for QR codes (member cards now, check-in codes later).

HMAC-SHA256 with the centre's SIGNING_KEY from the instance config. Keys rotate: the current
key signs, and every key in OLD_SIGNING_KEYS is still accepted, so cards printed before a
rotation keep working until the old key is dropped from the list.

Tokens are short ASCII (a USB scanner types them, a phone camera reads them): the payload is
a dot-separated string, the signature is base64url of a truncated HMAC (128 bits).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_BYTES = 16


class TokenSigner:
    def __init__(self, current_key: str, old_keys: Sequence[str] = (), *, purpose: str):
        if not current_key:
            raise ValueError("SIGNING_KEY is not configured: run `kiosk init`")
        self._keys = [current_key, *[k for k in old_keys if k]]
        self._purpose = purpose.encode()

    def _mac(self, key: str, payload: str) -> str:
        digest = hmac.new(key.encode(), self._purpose + b"\x00" + payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).decode().rstrip("=")

    def sign(self, payload: str) -> str:
        return f"{payload}.{self._mac(self._keys[0], payload)}"

    def check_digits(self, payload: str, digits: int) -> list[str]:
        """Decimal check digits of payload under each accepted key (the current key first): a
        short code a person can type, for things printed beside a QR (the card number)."""
        codes = []
        for key in self._keys:
            mac = hmac.new(key.encode(), self._purpose + b"\x01" + payload.encode(), hashlib.sha256).digest()
            codes.append(f"{int.from_bytes(mac[:8], 'big') % 10**digits:0{digits}d}")
        return codes

    def verify(self, token: str) -> str | None:
        """The payload if some accepted key signed it, else None."""
        payload, dot, signature = token.rpartition(".")
        if not dot or not payload or not token.isascii():
            # Tokens are ASCII; compare_digest raises on anything else (a 500, issue 8).
            return None
        for key in self._keys:
            if hmac.compare_digest(self._mac(key, payload), signature):
                return payload
        return None


def signer_from_config(config, purpose: str) -> TokenSigner:
    return TokenSigner(config["SIGNING_KEY"], config.get("OLD_SIGNING_KEYS") or (), purpose=purpose)
