"""Sync API v1, the parts both ends share: request signing, sealing phones, batch encoding.

A request is signed with the centre's key (HMAC-SHA256) over

    METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n sha256(BODY)

where PATH includes the query string and BODY is the bytes on the wire (gzip for a push). The
hub refuses a request whose timestamp is more than MAX_SKEW from its clock or whose nonce it
has seen, so a captured request cannot be replayed. See docs/sync.md and docs/openapi-sync.yaml.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import os
import secrets
import threading
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

API_PREFIX = "/api/sync/v1"
# The hub refuses a kiosk whose sync protocol is older than it understands (426 + kiosk_too_old).
PROTOCOL_VERSION = 1
MAX_SKEW_SECONDS = 300
MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 1_000_000  # compressed body
MAX_BODY_BYTES_UNCOMPRESSED = 16_000_000  # a gzip bomb stops here

HEADER_KEY = "X-Sync-Key"
HEADER_TIMESTAMP = "X-Sync-Timestamp"
HEADER_NONCE = "X-Sync-Nonce"
HEADER_SIGNATURE = "X-Sync-Signature"
HEADER_PROTOCOL = "X-Sync-Protocol"
HEADER_APP_VERSION = "X-Sync-App-Version"


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join((method.upper(), path, timestamp, nonce, body_hash(body))).encode()


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return hmac.new(secret.encode(), string_to_sign(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def signed_headers(key_id: str, secret: str, method: str, path: str, body: bytes, *, now: float, app_version: str) -> dict[str, str]:
    timestamp = str(int(now))
    nonce = secrets.token_hex(16)
    return {
        HEADER_KEY: key_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: sign(secret, method, path, timestamp, nonce, body),
        HEADER_PROTOCOL: str(PROTOCOL_VERSION),
        HEADER_APP_VERSION: app_version,
    }


def new_key_secret() -> str:
    return secrets.token_urlsafe(32)


# ---- batches ----


def encode_batch(events: Sequence[Mapping[str, Any]]) -> bytes:
    raw = json.dumps({"events": list(events)}, ensure_ascii=False, separators=(",", ":")).encode()
    return gzip.compress(raw, compresslevel=6)


def decode_batch(body: bytes) -> Any:
    """The JSON of a gzip body, refusing more than MAX_BODY_BYTES_UNCOMPRESSED once inflated.

    A body of one gzip member (what encode_batch writes) is inflated by one zlib call; anything
    else (several members, a truncated or damaged body) goes through GzipFile as before, which
    reads or refuses it the same way."""
    raw = _inflate_one_member(body)
    if raw is None:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as fh:
            raw = fh.read(MAX_BODY_BYTES_UNCOMPRESSED + 1)
    if len(raw) > MAX_BODY_BYTES_UNCOMPRESSED:
        raise ValueError("body too large once inflated")
    try:
        return orjson.loads(raw)  # 2-3x faster than json.loads
    except orjson.JSONDecodeError:
        # What orjson refuses and the standard library reads (integers past 64 bits, NaN, lone
        # surrogates): as before, for validation to judge.
        return json.loads(raw)


def _inflate_one_member(body: bytes) -> bytes | None:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # a gzip header and trailer
    try:
        raw = inflater.decompress(body, MAX_BODY_BYTES_UNCOMPRESSED + 1)
    except zlib.error:
        return None
    if len(raw) > MAX_BODY_BYTES_UNCOMPRESSED:
        return raw  # refused by the caller
    if not inflater.eof or inflater.unused_data:
        return None
    return raw


def canonical_hash(value: Any) -> str:
    """A hash of a JSON value that does not depend on key order or spacing."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


# ---- phones sealed to the hub ----


# How many (hub key, phone) seals a kiosk process keeps: a centre's regulars many times over.
SEAL_CACHE_SIZE = 4096

_SEALS: OrderedDict[tuple[str, str], str] = OrderedDict()  # (hub public key, phone) -> sealed, LRU order
_SEALS_LOCK = threading.Lock()
# The erasure marker this process watches (watch_erasures) and the stamp it last saw there.
_ERASURES: dict[str, Any] = {"path": None, "seen": None}


def seal(public_key_b64: str, phone: str) -> str:
    """A phone number encrypted to the hub's public key (X25519 sealed box): only the hub's
    private key opens it.

    Sealed once per person and hub key in this process (a bounded LRU): every event of one
    person carries the same sealed value until the hub's key rolls or the process restarts, so
    the hub opens it once (HubSecrets.person_of memoises sealed value -> pseudonym) instead of
    paying an X25519 multiplication per event at both ends. Two kiosks, or one kiosk before and
    after a restart, still seal one number to unrelated values (a fresh ephemeral key each
    time), and no kiosk can test a guess against a sealed value. An erasure drops the person's
    entry (forget_seal; in other processes through the marker of watch_erasures). Threat
    model: docs/sync.md."""
    _check_erasures()
    key = (public_key_b64, phone)
    with _SEALS_LOCK:
        sealed = _SEALS.get(key)
        if sealed is not None:
            _SEALS.move_to_end(key)
            return sealed
    sealed = seal_fresh(public_key_b64, phone)
    with _SEALS_LOCK:
        _SEALS[key] = sealed
        while len(_SEALS) > SEAL_CACHE_SIZE:
            _SEALS.popitem(last=False)
    return sealed


def cached_seals() -> int:
    """How many sealed values this process keeps."""
    return len(_SEALS)


def forget_seal(phone: str) -> None:
    """Drop this process's sealed values of one number (under every hub key): `kiosk privacy
    erase` calls it, and note_erasure() tells the other processes of the kiosk."""
    with _SEALS_LOCK:
        for key in [key for key in _SEALS if key[1] == phone]:
            del _SEALS[key]


def forget_seals() -> None:
    """Drop this process's sealed values (the next seal of each number is a new one)."""
    with _SEALS_LOCK:
        _SEALS.clear()


def watch_erasures(path: Path | None) -> None:
    """Make this process drop every sealed value it keeps when ``path`` (a marker in the
    instance folder) changes: the server process learns of an erasure made by the `kiosk
    privacy erase` command without knowing whose (erasures are rare; each person is sealed
    afresh once). One stat() per seal."""
    _ERASURES["path"], _ERASURES["seen"] = path, _stamp(path)


def note_erasure(path: Path | None, phone: str) -> None:
    """After an erasure committed: drop the number's sealed values here and move the marker on,
    so every kiosk process watching it drops its own."""
    forget_seal(phone)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="ascii") as marker:
            marker.write(".")  # the size changes even when the clock does not
        if _ERASURES["path"] == path:
            _ERASURES["seen"] = _stamp(path)


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def _check_erasures() -> None:
    path = _ERASURES["path"]
    if path is None:
        return
    stamp = _stamp(path)
    if stamp != _ERASURES["seen"]:
        _ERASURES["seen"] = stamp
        forget_seals()


def seal_fresh(public_key_b64: str, phone: str) -> str:
    """A new sealed value each call (a fresh ephemeral key): what seal() caches."""
    from nacl.public import PublicKey, SealedBox

    box = SealedBox(PublicKey(base64.b64decode(public_key_b64)))
    return base64.b64encode(box.encrypt(phone.encode())).decode()


def new_box_keypair() -> tuple[str, str]:
    """(private, public) as base64, for the hub's HUB_BOX_KEY."""
    from nacl.public import PrivateKey

    private = PrivateKey.generate()
    return base64.b64encode(bytes(private)).decode(), base64.b64encode(bytes(private.public_key)).decode()


def public_key_of(private_b64: str) -> str:
    from nacl.public import PrivateKey

    return base64.b64encode(bytes(PrivateKey(base64.b64decode(private_b64)).public_key)).decode()
