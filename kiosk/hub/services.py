"""The hub's services: enrolment and keys, request authentication, ingest, publications.

Plain functions over a Session (no Flask). The units of work own their transaction
(kiosk.db.write_transaction): create_enrolment, revoke_keys, and one per signed API request
(signed_unit: hello, roll, push, pull) in which authentication records the nonce and the work
inserts the events, the conflicts, the roll-up queue row and the acknowledged sequence,
committed once (the roll-ups themselves are applied off the push: kiosk.hub.rollup),
so a refused or interrupted request leaves nothing behind. The pieces they are made of (enrol,
authenticate, ingest, pull, publish …) write in the caller's transaction.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import orjson
from psycopg import errors as psycopg_errors
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from kiosk.centres.models import Centre
from kiosk.db import utcnow, write_transaction
from kiosk.errors import KioskError
from kiosk.hub.models import (
    HubCentre,
    HubConflict,
    HubDaily,
    HubEnrolment,
    HubEvent,
    HubKey,
    HubMonthly,
    HubNonce,
    HubPeople,
    HubPeopleCount,
    HubPersonDay,
    HubPublication,
    KeyStatus,
)
from kiosk.i18n import _l
from kiosk.sync import protocol

ENROLMENT_DAYS = 7
ENROLMENT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
PUBLICATION_KINDS = ("activity", "notice", "reward")
PULL_LIMIT = 200
MAX_TYPE_LENGTH = 40
MAX_BIGINT = 2**63 - 1  # PostgreSQL bigint: a larger seq was a 500 (issue 14, the sync API fuzz)
MAX_INT = 2**31 - 1  # schema_version (integer)
MAX_POINTS = 10**9  # a day's points are summed into a bigint
# sealed value -> pseudonym entries a hub worker keeps (~0.3 KB each: ~10 MB per worker)
PSEUDONYM_MEMO_SIZE = 32_768


def small_number(raw: str, digits: int = 18) -> int | None:
    """An ASCII decimal header or query value, else None: ``"²".isdigit()`` is true but
    ``int("²")`` raises, and 400 nines overflow a float or a bigint (each was a 500)."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= digits else None


class HubError(KioskError):
    status = 400


class AuthError(HubError):
    """401: the request is not from an enrolled centre (or is a replay). Nothing is written."""

    status = 401


class VersionError(HubError):
    status = 426


@dataclass(frozen=True)
class HubSecrets:
    """What only the hub holds: the box keys that open sealed phones (current first, then old
    ones still accepted) and the pseudonym key."""

    box_keys: tuple[str, ...]
    pseudonym_key: bytes
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    min_protocol: int = protocol.PROTOCOL_VERSION
    memo_size: int = PSEUDONYM_MEMO_SIZE

    @property
    def public_key(self) -> str:
        return protocol.public_key_of(self.box_keys[0])

    @functools.cached_property
    def _box_pairs(self) -> tuple[tuple[bytes, bytes], ...]:
        """(public, private) bytes of each box key, derived once (deriving a public key is an
        X25519 multiplication: once per event it cost as much as the opening itself)."""
        from nacl.public import PrivateKey

        pairs = []
        for key in self.box_keys:
            private = PrivateKey(base64.b64decode(key))
            pairs.append((bytes(private.public_key), bytes(private)))
        return tuple(pairs)

    def open_sealed(self, sealed: str) -> str:
        from nacl.bindings import crypto_box_seal_open
        from nacl.exceptions import CryptoError

        data = base64.b64decode(sealed, validate=True)
        for public, private in self._box_pairs:
            try:
                return crypto_box_seal_open(data, public, private).decode()
            except CryptoError:
                continue
        raise HubError("unreadable_person", _l("A sealed person could not be opened with the hub's keys."))

    def pseudonym(self, phone: str) -> str:
        return hmac.new(self.pseudonym_key, phone.encode(), hashlib.sha256).hexdigest()

    def person_of(self, sealed: str) -> str:
        """The pseudonym of the phone inside a sealed value, opened at most once per sealed value
        in this process: a kiosk seals a person once per hub key (protocol.seal), so every event
        of that person carries the same value. The memo maps sealed value -> pseudonym, both of
        which the hub already holds; it never holds a phone (the phone lives only inside
        _open_person, as before). Bounded LRU of ``memo_size`` entries per worker."""
        return self._memo(sealed)

    @functools.cached_property
    def _memo(self) -> Callable[[str], str]:
        return functools.lru_cache(maxsize=self.memo_size)(self._open_person)

    def _open_person(self, sealed: str) -> str:
        return self.pseudonym(self.open_sealed(sealed))


def secrets_from_config(config: Mapping[str, Any]) -> HubSecrets:
    box = config.get("HUB_BOX_KEY") or ""
    pseudonym_key = config.get("HUB_PSEUDONYM_KEY") or ""
    if not box or not pseudonym_key:
        raise RuntimeError("the hub needs HUB_BOX_KEY and HUB_PSEUDONYM_KEY (run `kiosk hub init`)")
    old = config.get("HUB_OLD_BOX_KEYS") or []
    return HubSecrets(
        (box, *old),
        pseudonym_key.encode(),
        ZoneInfo(config.get("TIMEZONE", "Asia/Shanghai")),
        int(config.get("HUB_MIN_PROTOCOL", protocol.PROTOCOL_VERSION)),
    )


# ---- centres, enrolment, keys ----


def _centre(session: Session, code: str) -> Centre:
    centre = session.scalar(select(Centre).where(Centre.code == code))
    if centre is None:
        raise HubError("unknown_centre", _l("There is no centre with this code."), status=404, field="centre")
    return centre


def _code_hash(code: str) -> str:
    return hashlib.sha256("".join(code.upper().split()).replace("-", "").encode()).hexdigest()


def create_enrolment(session: Session, centre_code: str, *, created_by: str = "", now: datetime | None = None) -> str:
    """A one-time code for a centre's kiosk (`kiosk enrol CODE`), valid ENROLMENT_DAYS. A unit
    of work: committed when it returns."""
    now = now or utcnow()
    with write_transaction(session):
        centre = _centre(session, centre_code)
        raw = "".join(secrets.choice(ENROLMENT_ALPHABET) for _ in range(12))
        session.add(HubEnrolment(code_hash=_code_hash(raw), centre_id=centre.id, created_by=created_by, expires_at=now + timedelta(days=ENROLMENT_DAYS)))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


@dataclass(frozen=True)
class IssuedKey:
    centre_code: str
    key_id: str
    secret: str


def _new_key(session: Session, centre: Centre) -> IssuedKey:
    key = HubKey(key_id=f"k_{uuid.uuid4().hex[:24]}", centre_id=centre.id, secret=protocol.new_key_secret())
    session.add(key)
    if session.get(HubCentre, centre.id) is None:
        session.add(HubCentre(centre_id=centre.id, acked_seq=0))
    session.flush()
    return IssuedKey(centre.code, key.key_id, key.secret)


def enrol(session: Session, code: str, *, now: datetime | None = None) -> IssuedKey:
    """Exchange a one-time code for the centre's key. Any earlier key of the centre is revoked:
    enrolling again is how a replaced or lost kiosk is cut off."""
    now = now or utcnow()
    enrolment = session.scalar(select(HubEnrolment).where(HubEnrolment.code_hash == _code_hash(code or "")).with_for_update())
    if enrolment is None or enrolment.used_at is not None or enrolment.expires_at <= now:
        raise AuthError("bad_enrolment_code", _l("This enrolment code is unknown, used or expired. Ask the district for a new one."))
    enrolment.used_at = now
    _revoke(session, enrolment.centre_id, now)
    return _new_key(session, enrolment.centre)


def enrol_unit(session: Session, code: str, headers: Mapping[str, str], hub: HubSecrets) -> IssuedKey:
    """`POST /enrol` as one unit of work (the protocol check first: a refused kiosk writes nothing)."""
    check_protocol(headers, hub)
    with write_transaction(session):
        return enrol(session, code)


def revoke_keys(session: Session, centre_code: str, *, now: datetime | None = None) -> int:
    """Revoke every key of a centre at once (a unit of work); how many were still valid."""
    with write_transaction(session):
        return _revoke(session, _centre(session, centre_code).id, now or utcnow())


def _revoke(session: Session, centre_id: int, now: datetime) -> int:
    result = session.execute(
        update(HubKey).where(HubKey.centre_id == centre_id, HubKey.status != KeyStatus.REVOKED).values(status=KeyStatus.REVOKED, revoked_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def roll_key(session: Session, key: HubKey) -> IssuedKey:
    """A new key for the key's centre. The old one is superseded, still accepted until the new
    one is first used, so a lost answer never locks the kiosk out."""
    session.execute(update(HubKey).where(HubKey.centre_id == key.centre_id, HubKey.status == KeyStatus.ACTIVE).values(status=KeyStatus.SUPERSEDED))
    return _new_key(session, key.centre)


# ---- authentication ----


@dataclass(frozen=True)
class KeyRow:
    """What a push needs of the key that signed it, read by one prepared statement instead of
    loading a HubKey through the ORM (authenticate_row)."""

    id: int
    key_id: str
    centre_id: int
    secret: str
    status: KeyStatus


K = TypeVar("K", HubKey, KeyRow)


def _verified(method: str, path: str, headers: Mapping[str, str], body: bytes, now: datetime, find: Callable[[str], K | None]) -> tuple[K, str]:
    """The key (``find(key_id)``) that signed a request and the request's nonce, or AuthError:
    an unknown or revoked key, a bad signature, a skewed clock. Reads only."""
    key_id = headers.get(protocol.HEADER_KEY, "")
    timestamp = headers.get(protocol.HEADER_TIMESTAMP, "")
    nonce = headers.get(protocol.HEADER_NONCE, "")
    signature = headers.get(protocol.HEADER_SIGNATURE, "")
    refused = AuthError("bad_signature", _l("The request is not signed by an enrolled centre."))
    seconds = small_number(timestamp, 12)
    # compare_digest raises on a non-ASCII signature (a 500)
    if not (key_id and seconds is not None and 16 <= len(nonce) <= 64 and signature and signature.isascii()):
        raise refused
    if abs(now.timestamp() - seconds) > protocol.MAX_SKEW_SECONDS:
        raise AuthError("clock_skew", _l("The kiosk's clock is more than 5 minutes off the hub's. Set the kiosk's time and try again."))
    key = find(key_id)
    if key is None:
        raise refused
    expected = protocol.sign(key.secret, method, path, timestamp, nonce, body)
    if not hmac.compare_digest(expected, signature):
        raise refused
    if key.status == KeyStatus.REVOKED:
        raise AuthError("key_revoked", _l("This centre's key was revoked. Enrol the kiosk again with a new code."))
    return key, nonce


def authenticate(session: Session, method: str, path: str, headers: Mapping[str, str], body: bytes, *, now: datetime | None = None) -> HubKey:
    """Check a signed request and record its nonce (in the caller's transaction). Raises
    AuthError (401) for an unknown or revoked key, a bad signature, a skewed clock or a reused
    nonce; VersionError (426) for a kiosk speaking an older protocol than the hub accepts."""
    now = now or utcnow()
    key, nonce = _verified(method, path, headers, body, now, lambda key_id: session.scalar(select(HubKey).where(HubKey.key_id == key_id)))
    # The nonce is written in the same transaction as whatever the request writes.
    cutoff = now - timedelta(seconds=2 * protocol.MAX_SKEW_SECONDS)
    if session.get_bind().dialect.name != "postgresql":  # a SQLite demo hub: no DML in WITH
        session.execute(delete(HubNonce).where(HubNonce.seen_at < cutoff))
        if session.get(HubNonce, (key.key_id, nonce)) is not None:
            raise AuthError("nonce_reused", _l("This request was already received (replay refused)."))
        session.add(HubNonce(key_id=key.key_id, nonce=nonce, seen_at=now))
        session.flush()
        if key.status == KeyStatus.ACTIVE:  # first use of a rolled key retires the superseded one
            session.execute(
                update(HubKey).where(HubKey.centre_id == key.centre_id, HubKey.status == KeyStatus.SUPERSEDED).values(status=KeyStatus.REVOKED, revoked_at=now)
            )
        key.last_used_at = now
        return key
    _record_nonce(session, key, nonce, now)
    set_committed_value(key, "last_used_at", now)
    return key


def authenticate_row(session: Session, method: str, path: str, headers: Mapping[str, str], body: bytes, *, now: datetime | None = None) -> KeyRow:
    """authenticate() on PostgreSQL for the push: the same checks and the same nonce statement,
    the key read by a prepared statement on the driver's connection (no ORM object: ~1 ms of a
    push less)."""
    now = now or utcnow()

    def find(key_id: str) -> KeyRow | None:
        with _driver(session).cursor() as cursor:
            row = cursor.execute(_KEY_ROW, {"key_id": key_id}, prepare=True).fetchone()
        return None if row is None else KeyRow(int(row[0]), key_id, int(row[1]), str(row[2]), KeyStatus(row[3]))

    key, nonce = _verified(method, path, headers, body, now, find)
    _record_nonce(session, key, nonce, now)
    return key


_KEY_ROW = "SELECT id, centre_id, secret, status FROM hub_key WHERE key_id = %(key_id)s"


def _record_nonce(session: Session, key: HubKey | KeyRow, nonce: str, now: datetime) -> None:
    """PostgreSQL: one statement (one round trip; five before): forget nonces older than the
    skew window, record this one unless seen (else AuthError), and only then mark the key used
    and, on the first use of a rolled key, retire the superseded one."""
    with _driver(session).cursor() as cursor:
        (recorded,) = cursor.execute(
            _RECORD_NONCE,
            {
                "key_id": key.key_id,
                "nonce": nonce,
                "now": now,
                "cutoff": now - timedelta(seconds=2 * protocol.MAX_SKEW_SECONDS),
                "key": key.id,
                "centre": key.centre_id,
                "active": key.status == KeyStatus.ACTIVE,
                "revoked": KeyStatus.REVOKED.value,
                "superseded": KeyStatus.SUPERSEDED.value,
            },
            prepare=True,
        ).fetchone()
    if not recorded:
        raise AuthError("nonce_reused", _l("This request was already received (replay refused)."))


_RECORD_NONCE = (
    "WITH purged AS (DELETE FROM hub_nonce WHERE seen_at < %(cutoff)s),"
    " recorded AS (INSERT INTO hub_nonce (key_id, nonce, seen_at) VALUES (%(key_id)s, %(nonce)s, %(now)s) ON CONFLICT DO NOTHING RETURNING 1),"
    " retired AS (UPDATE hub_key SET status = %(revoked)s, revoked_at = %(now)s"
    "  WHERE centre_id = %(centre)s AND status = %(superseded)s AND %(active)s AND EXISTS (SELECT FROM recorded)),"
    " used AS (UPDATE hub_key SET last_used_at = %(now)s WHERE id = %(key)s AND EXISTS (SELECT FROM recorded))"
    " SELECT count(*) FROM recorded"
)


@dataclass(frozen=True)
class SignedRequest:
    """What authenticate() checks of a request: PATH includes the query string, BODY is the
    bytes on the wire."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


T = TypeVar("T")


def signed_unit(session: Session, request: SignedRequest, hub: HubSecrets, work: Callable[[HubKey], T]) -> T:
    """One signed request of a centre as one unit of work: authenticate (recording the nonce),
    check the protocol, ``work(key)``, commit. Any refusal or error rolls back all of it, the
    nonce included."""
    with write_transaction(session):
        key = authenticate(session, request.method, request.path, request.headers, request.body)
        check_protocol(request.headers, hub)
        return work(key)


def hello_unit(session: Session, request: SignedRequest, hub: HubSecrets) -> dict[str, Any]:
    return signed_unit(session, request, hub, lambda key: hello(session, key, hub))


def roll_key_unit(session: Session, request: SignedRequest, hub: HubSecrets) -> IssuedKey:
    return signed_unit(session, request, hub, lambda key: roll_key(session, key))


def pull_unit(session: Session, request: SignedRequest, hub: HubSecrets, cursor: int) -> dict[str, Any]:
    return signed_unit(session, request, hub, lambda key: pull(session, key, cursor))


def push_unit(session: Session, request: SignedRequest, hub: HubSecrets) -> PushResult:
    """`POST /events`: a gzip JSON batch stored exactly once (ingest), in one unit of work. On
    PostgreSQL the key is read without the ORM (authenticate_row; the same checks)."""

    def work(key: HubKey | KeyRow) -> PushResult:
        if request.headers.get("Content-Encoding", "") != "gzip":
            raise HubError("gzip_required", _l("A push body must be gzip-compressed JSON (Content-Encoding: gzip)."))
        try:
            batch = protocol.decode_batch(request.body)
        except (OSError, EOFError, ValueError):
            raise HubError("bad_batch", _l("The body is not gzip-compressed JSON.")) from None
        events = batch.get("events") if isinstance(batch, dict) else None
        return ingest(session, key, events, hub, app_version=request.headers.get(protocol.HEADER_APP_VERSION, ""))

    if session.get_bind().dialect.name != "postgresql":
        return signed_unit(session, request, hub, work)
    with write_transaction(session):
        key = authenticate_row(session, request.method, request.path, request.headers, request.body)
        check_protocol(request.headers, hub)
        return work(key)


def check_protocol(headers: Mapping[str, str], hub: HubSecrets) -> None:
    version = small_number(headers.get(protocol.HEADER_PROTOCOL, ""), 9) or 0
    if version < hub.min_protocol:
        raise VersionError(
            "kiosk_too_old",
            _l(
                "This kiosk's software is too old for the district hub (sync protocol %(have)s, hub needs %(need)s). Update the kiosk; its events are kept until then.",
                have=version,
                need=hub.min_protocol,
            ),
        )


# ---- ingest ----


@dataclass
class PushResult:
    acked_seq: int
    inserted: int = 0
    duplicates: int = 0
    conflicts: list[str] = field(default_factory=list)


def _parse_time(raw: Any) -> datetime:
    value = datetime.fromisoformat(str(raw))
    if value.tzinfo is None:
        raise ValueError("naive time")
    return value.astimezone(UTC)


def _clean_events(raw_events: Any, hub: HubSecrets) -> list[dict[str, Any]]:
    """Validate a batch and turn sealed phones into the hub's pseudonym (the sealed value goes
    no further than this function and the worker's memo of sealed value -> pseudonym: it is
    never stored)."""
    return list(_cleaned(raw_events, hub))


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _event_id(raw: Any) -> str:
    """The canonical text of a UUID (what str(uuid.UUID(...)) gives); the usual lower-case
    canonical text is checked by a regular expression instead of building a UUID object."""
    if type(raw) is str and _UUID.fullmatch(raw):
        return raw
    return str(uuid.UUID(str(raw)))


def _cleaned(raw_events: Any, hub: HubSecrets) -> Iterator[dict[str, Any]]:
    """_clean_events one event at a time (ingest streams them into COPY as they are checked);
    raises HubError at the first bad event."""
    bad = HubError("bad_batch", _l("The batch is not a list of valid events."))
    if not isinstance(raw_events, list) or not 0 < len(raw_events) <= protocol.MAX_BATCH_EVENTS:
        raise bad
    zone = hub.zone
    for raw in raw_events:
        try:
            seq = raw["seq"]
            if type(seq) is not int or not 1 <= seq <= MAX_BIGINT:  # type(): a bool is not a seq
                raise ValueError
            event_id = _event_id(raw["event_id"])
            type_ = raw["type"]
            if not isinstance(type_, str) or not 0 < len(type_) <= MAX_TYPE_LENGTH:
                raise ValueError
            version = raw.get("schema_version", 1)
            if type(version) is not int or not 0 <= version <= MAX_INT:
                raise ValueError
            occurred_at = _parse_time(raw["occurred_at"])
            day = occurred_at.astimezone(zone).date()  # year 1 or 9999 overflows here
            payload = raw["payload"]
            if not isinstance(payload, dict):
                raise ValueError
            points = _points(payload)
            if not -MAX_POINTS <= points <= MAX_POINTS:
                raise ValueError
        except (KeyError, TypeError, ValueError, OverflowError):
            raise bad from None
        if "person_phone" in payload or "phone" in payload or "name" in payload:
            raise HubError("personal_data", _l("An event carries a phone or a name: the hub refuses to store it."))
        person = None
        if "person_sealed" in payload:
            payload = dict(payload)
            sealed = payload.pop("person_sealed")
            try:
                person = hub.person_of(str(sealed))
            except (ValueError, TypeError):
                raise bad from None
            payload["person"] = person
        occurred_text = occurred_at.isoformat()
        canonical = _canonical(type_, version, occurred_text, payload)
        if canonical is None:
            raise bad
        payload_json, payload_hash = canonical
        yield {
            "seq": seq,
            "event_id": event_id,
            "type": type_,
            "schema_version": version,
            "occurred_at": occurred_at,
            "occurred_text": occurred_text,
            "day": day,
            "person": person,
            "payload": payload,
            "payload_json": payload_json,
            "payload_hash": payload_hash,
            "points": points,
        }


@functools.lru_cache(maxsize=256)
def _json_text(value: str) -> str:
    """A JSON string (a batch has a handful of event types: dumped once each)."""
    return json.dumps(value, ensure_ascii=False)


def _canonical(type_: str, version: int, occurred_at: str, payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """(the payload as JSON, protocol.canonical_hash of the stored event) from one dump of the
    payload, or None when PostgreSQL would not store it: UTF-8 text (no lone surrogates), no NUL
    (text and jsonb refuse it), no NaN or Infinity (jsonb refuses them). Each was a 500.

    The hash is byte for byte canonical_hash({"type", "schema_version", "occurred_at",
    "payload"}) (sorted keys, no spaces), so events stored before still match their resends;
    the event's own keys are written around the payload's dump in sorted order (occurred_at is an
    isoformat: nothing to escape) instead of dumping it again (three dumps an event were a tenth
    of a push)."""
    dumped = _dump_sorted(payload)
    try:
        if dumped is None:
            dumped = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        stored = (f'{{"occurred_at":"{occurred_at}","payload":{dumped},"schema_version":{int(version)},"type":{_json_text(type_)}}}').encode()
    except (ValueError, TypeError):  # UnicodeEncodeError too; TypeError: keys that do not sort
        return None
    if "\\u0000" in dumped or "\x00" in type_:
        return None
    return dumped, hashlib.sha256(stored).hexdigest()


def _dump_sorted(payload: Mapping[str, Any]) -> str | None:
    """json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")) by
    orjson (5x faster), which writes the same bytes for what a JSON body decodes to (text,
    integers of 64 bits, true/false/null, lists, objects) but not for floats (1e-05 against
    0.00001; NaN as null) nor larger integers: None for those, and the standard library dumps
    them (tests/sync/test_seal_once.py compares the two)."""
    if not _without_floats(payload):
        return None
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):  # 65-bit integers, lone surrogates
        return None


def _without_floats(value: Any) -> bool:
    """No float anywhere in a decoded JSON value (a loop, not a generator per level: a payload
    is checked per event)."""
    for item in value.values() if type(value) is dict else value if type(value) is list else (value,):
        kind = type(item)
        if kind is float:
            return False
        if (kind is dict or kind is list) and not _without_floats(item):
            return False
    return True


def _insert(session: Session) -> Any:
    """The dialect's INSERT with ON CONFLICT (PostgreSQL; SQLite for a demo hub)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _points(payload: Mapping[str, Any]) -> int:
    value = payload.get("points", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def ingest(session: Session, key: HubKey | KeyRow, raw_events: Any, hub: HubSecrets, *, now: datetime | None = None, app_version: str = "") -> PushResult:
    """Store a batch exactly once and advance the centre's acknowledged sequence, in the
    caller's transaction. An event_id already held with another payload is set aside in
    hub_conflict and reported; it still counts as received (it is not lost, and the kiosk must
    not resend it forever).

    PostgreSQL, usually in five round trips: (1) lock the centre's row and read its
    acknowledged sequence; (2) a savepoint and ids for the batch from hub_event's sequence;
    (3) COPY the events straight into hub_event as they are validated (the server parses one
    while Python checks the next); (4) one statement queues the batch for the roll-ups
    (kiosk.hub.rollup applies it just after, off the request) and records the acknowledged
    sequence; (5) the commit. When the hub already holds one of the event_ids (a resend after a
    lost answer, a restored kiosk), the COPY fails on the unique key: back to the savepoint, and
    the batch goes through a temporary table and INSERT … ON CONFLICT DO NOTHING (_stage,
    _insert_staged). A bad event stops the COPY, and the caller's rollback leaves nothing
    behind. A SQLite demo hub keeps its roll-ups here."""
    now = now or utcnow()
    centre_id = key.centre_id
    postgres = session.get_bind().dialect.name == "postgresql"
    copied: tuple[int, int] | None = None
    if postgres:
        acked_before = _lock_centre(session, centre_id)
        rows, copied = _copy_new(session, _cleaned(raw_events, hub), len(raw_events) if isinstance(raw_events, list) else 0, centre_id, now)
        state = None
    else:
        rows = _clean_events(raw_events, hub)
        state = session.scalar(select(HubCentre).where(HubCentre.centre_id == centre_id).with_for_update())
        if state is None:
            state = HubCentre(centre_id=centre_id, acked_seq=0)
            session.add(state)
            session.flush()
        acked_before, scope_ids = state.acked_seq, scopes(session, centre_id)
        centre = key.centre if isinstance(key, HubKey) else session.get(Centre, centre_id)
        level = str(getattr(centre.level, "value", centre.level)) if centre is not None else ""
        for row in rows:
            row["centre_id"] = centre_id
            row["received_at"] = now
    # The acknowledged sequence: the longest run without gaps from what the hub held before.
    acked = acked_before
    for seq in sorted(row["seq"] for row in rows):
        if seq == acked + 1:
            acked = seq
        elif seq > acked + 1:
            break
    app_version = app_version[:20]
    erasures = [row for row in rows if row["type"] == "privacy.erased"]
    if postgres:
        if copied is not None:
            _acknowledge(session, centre_id, copied, len(rows), acked=acked, now=now, app_version=app_version)
            inserted_ids = {row["event_id"] for row in rows}
        else:
            _stage(session, rows, centre_id, now)
            inserted_ids = _insert_staged(session, centre_id, acked=acked, now=now, app_version=app_version)
        erasures = [row for row in erasures if row["event_id"] in inserted_ids]
        if erasures:
            # The person's rows must be in the roll-ups before the hub relinks them: apply this
            # centre's queued batches (this one included) in this transaction first, as the
            # roll-ups were kept in the push before (a branch row added later under the token
            # would count the person twice in the branch).
            from kiosk.hub import rollup

            rollup.apply_queued(session, centre_id=centre_id, max_events=None)
    else:
        inserted_ids = _insert_events(session, rows, scope_ids, level)
        erasures = [row for row in erasures if row["event_id"] in inserted_ids]
    forget_erased_people(session, centre_id, erasures)
    result = PushResult(acked_seq=acked, inserted=len(inserted_ids))
    others = [row for row in rows if row["event_id"] not in inserted_ids] if len(inserted_ids) < len(rows) else []
    if others:
        held = dict(
            session.execute(
                select(HubEvent.event_id, HubEvent.payload_hash).where(HubEvent.centre_id == centre_id, HubEvent.event_id.in_([r["event_id"] for r in others]))
            ).all()
        )
        for row in others:
            if held.get(row["event_id"]) == row["payload_hash"]:
                result.duplicates += 1
                continue
            result.conflicts.append(row["event_id"])
            already = session.scalar(
                select(func.count()).select_from(HubConflict).where(HubConflict.centre_id == centre_id, HubConflict.payload_hash == row["payload_hash"])
            )
            if not already:
                session.add(
                    HubConflict(
                        centre_id=centre_id, event_id=row["event_id"], seq=row["seq"], payload=row["payload"], payload_hash=row["payload_hash"], received_at=now
                    )
                )
    if state is not None:
        state.acked_seq = acked
        state.last_push_at = now
        if app_version:
            state.app_version = app_version
    else:
        # Written by the statement: whatever this session loaded of the row is stale now.
        loaded = session.identity_map.get(session.identity_key(HubCentre, (centre_id,)))
        if loaded is not None:
            session.expire(loaded)
    session.flush()
    return result


# hub_people kinds per branch and level of centre: "l" + the level's letter + "m" or "y".
LEVEL_LETTERS = {"district": "d", "subdistrict": "s", "community": "c", "village": "v", "business": "b", "industry": "i"}


def level_kind(level: str, period: str) -> str:
    """The hub_people kind of the people who came, in a month ("m") or year ("y"), to a centre
    of ``level`` in a branch (e.g. "lcm": community centres, month)."""
    return "l" + LEVEL_LETTERS.get(level, "x") + period


# Distinct people are counted from check-ins (hub_person_day).
PERSON_DAY_TYPE = "checkin.created"
EVENT_COLUMNS = ("centre_id", "seq", "event_id", "type", "schema_version", "occurred_at", "day", "received_at", "person", "payload", "payload_hash")


def scopes(session: Session, centre_id: int) -> list[int]:
    """The centre and its ancestors, nearest first (the branches a visit counts in)."""
    found: list[int] = [centre_id]
    for (scope_id,) in session.execute(_ANCESTORS, {"centre": centre_id}):  # one query, not one per level
        if scope_id in found:  # a loop in the tree ends the walk
            break
        found.append(scope_id)
    return found


_ANCESTORS = text(
    "WITH RECURSIVE up (id, parent_id, depth) AS ("
    " SELECT id, parent_id, 0 FROM centre WHERE id = :centre"
    " UNION ALL SELECT c.id, c.parent_id, up.depth + 1 FROM centre c JOIN up ON c.id = up.parent_id WHERE up.depth < 64"
    ") SELECT id FROM up WHERE depth > 0 ORDER BY depth"
)


def _insert_events(session: Session, rows: Sequence[Mapping[str, Any]], scope_ids: Sequence[int], level: str) -> set[str]:
    """SQLite (demo hub): insert the batch's events that the hub does not hold yet (the
    dialect's INSERT … ON CONFLICT DO NOTHING) and add those (only those) to the roll-ups in
    Python; the event_ids inserted. PostgreSQL: _stage and _insert_staged."""
    statement = _insert(session)(HubEvent).on_conflict_do_nothing(index_elements=["centre_id", "event_id"]).returning(HubEvent.event_id)
    inserted = set(session.scalars(statement, [{k: v for k, v in row.items() if k not in ("payload_json", "points")} for row in rows]).all())
    _roll_up(session, [row for row in rows if row["event_id"] in inserted], scope_ids, level)
    return inserted


def _driver(session: Session) -> Any:
    return session.connection().connection.driver_connection


def _lock_centre(session: Session, centre_id: int) -> int:
    """PostgreSQL: lock the centre's hub row (two pushes of one centre go one after the other,
    so the ids a push inserts for its centre form a range no other push of it shares) and read
    its acknowledged sequence."""
    with _driver(session).cursor() as cursor:
        row = cursor.execute(_LOCK_CENTRE, {"centre": centre_id}, prepare=True).fetchone()
        if row is None:  # a key issued before hub_centre rows came with it
            cursor.execute(
                "INSERT INTO hub_centre (centre_id, acked_seq, app_version) VALUES (%(centre)s, 0, '') ON CONFLICT DO NOTHING", {"centre": centre_id}
            )
            row = cursor.execute(_LOCK_CENTRE, {"centre": centre_id}).fetchone()
    return int(row[0])


_LOCK_CENTRE = "SELECT acked_seq FROM hub_centre WHERE centre_id = %(centre)s FOR UPDATE"

_INCOMING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS hub_event_incoming (centre_id integer, seq bigint, event_id varchar(36), type varchar(40), "
    "schema_version integer, occurred_at timestamptz, day date, received_at timestamptz, person varchar(64), payload jsonb, "
    "payload_hash varchar(64)) ON COMMIT DELETE ROWS"
)


def _event_row(row: dict[str, Any], centre_id: int, now: datetime) -> tuple:
    """A validated event as the EVENT_COLUMNS of hub_event (and of the temporary table)."""
    row["centre_id"] = centre_id
    row["received_at"] = now
    return (
        centre_id,
        row["seq"],
        row["event_id"],
        row["type"],
        row["schema_version"],
        row["occurred_at"],
        row["day"],
        now,
        row["person"],
        row["payload_json"],
        row["payload_hash"],
    )


# Rows of COPY text sent at a time while a batch is validated (~50 KB).
COPY_CHUNK_ROWS = 125
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@functools.lru_cache(maxsize=256)
def _copy_text(value: str) -> str:
    """A value as COPY's text format writes it (backslash, tab, newline, carriage return
    escaped); for the event types (a handful per batch: escaped once each)."""
    return value.translate(_COPY_ESCAPES)


def _copy_line(event_id: int, row: Mapping[str, Any], middle: str, received: str) -> str:
    """One hub_event row (id, then EVENT_COLUMNS) as a line of COPY text, formatted from what
    validation already made (the occurred_at text it hashed, the payload's JSON) instead of
    psycopg adapting eleven Python values per row. The event_id is a canonical UUID, the hash
    and person hex, the times ISO texts: nothing to escape; the payload's JSON holds no raw tab
    or newline (JSON escapes them) but may hold backslashes."""
    payload = row["payload_json"]
    if "\\" in payload or "\t" in payload or "\n" in payload or "\r" in payload:
        payload = payload.translate(_COPY_ESCAPES)
    return (
        f"{event_id}{middle}{row['seq']}\t{row['event_id']}\t{_copy_text(row['type'])}\t{row['schema_version']}\t{row['occurred_text']}"
        f"\t{row['day'].isoformat()}{received}{row['person'] or _COPY_NULL}\t{payload}\t{row['payload_hash']}\n"
    )


_COPY_NULL = "\\N"


def _copy_new(
    session: Session, events: Iterator[dict[str, Any]], count: int, centre_id: int, now: datetime
) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    """PostgreSQL, the usual push (events the hub does not hold yet): COPY them straight into
    hub_event as they are validated, under a savepoint, with ``count`` ids taken from its
    sequence after the centre's row was locked (so no other push of the centre has ids in their
    range). The validated rows and (first id, last id); or the rows and None when the hub
    already holds one of the event_ids (the COPY failed on the unique key and the savepoint was
    rolled back: the caller inserts them with ON CONFLICT). Validation raises at the first bad
    event, which aborts the COPY."""
    if not 0 < count <= protocol.MAX_BATCH_EVENTS:
        return list(events), None  # _cleaned refuses the batch
    rows: list[dict[str, Any]] = []
    with _driver(session).cursor() as cursor:
        cursor.execute(f"SAVEPOINT hub_push; SELECT nextval('hub_event_id_seq') FROM generate_series(1, {int(count)})")
        cursor.nextset()
        ids = sorted(value for (value,) in cursor.fetchall())
        middle = f"\t{int(centre_id)}\t"
        received = f"\t{now.isoformat()}\t"
        lines: list[str] = []
        try:
            with cursor.copy(f"COPY hub_event (id, {', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                for row, event_id in zip(events, ids, strict=False):
                    rows.append(row)
                    lines.append(_copy_line(event_id, row, middle, received))
                    if len(lines) == COPY_CHUNK_ROWS:  # the server parses these while the next are checked
                        copy.write("".join(lines).encode())
                        lines.clear()
                if lines:
                    copy.write("".join(lines).encode())
        except psycopg_errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT hub_push")
            rows.extend(events)  # validate the rest
            return rows, None
    if len(rows) != count:  # cannot happen: _cleaned yields one row per event or raises
        raise HubError("bad_batch", _l("The batch is not a list of valid events."))
    return rows, (ids[0], ids[-1])


def _acknowledge(session: Session, centre_id: int, ids: tuple[int, int], count: int, *, acked: int, now: datetime, app_version: str) -> None:
    """PostgreSQL, after _copy_new: queue the batch for the roll-ups and record the
    acknowledged sequence, in one statement."""
    with _driver(session).cursor() as cursor:
        cursor.execute(
            """WITH ack AS (
                    UPDATE hub_centre SET acked_seq = %(acked)s, last_push_at = %(now)s,
                           app_version = CASE WHEN %(app_version)s = '' THEN app_version ELSE %(app_version)s END
                    WHERE centre_id = %(centre)s
                )
                INSERT INTO hub_rollup_queue (centre_id, first_id, last_id, events, queued_at)
                VALUES (%(centre)s, %(first)s, %(last)s, %(count)s, %(now)s)""",
            {"centre": centre_id, "acked": acked, "now": now, "app_version": app_version, "first": ids[0], "last": ids[1], "count": count},
            prepare=True,
        )


def _stage(session: Session, rows: Iterable[dict[str, Any]], centre_id: int, now: datetime) -> None:
    """PostgreSQL, a batch holding event_ids the hub may hold already: COPY the validated rows
    into the temporary table for _insert_staged. The table lives as long as the pooled
    connection, its rows as long as the transaction (ON COMMIT DELETE ROWS), so a rolled-back
    push leaves nothing behind."""
    with _driver(session).cursor() as cursor:
        cursor.execute(_INCOMING, prepare=False)
        cursor.execute("DELETE FROM hub_event_incoming")
        with cursor.copy(f"COPY hub_event_incoming ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(_event_row(row, centre_id, now))


def _insert_staged(session: Session, centre_id: int, *, acked: int, now: datetime, app_version: str) -> set[str]:
    """PostgreSQL: one statement inserts the staged events the hub does not hold yet (ON
    CONFLICT DO NOTHING RETURNING), queues what it inserted for the roll-ups (one
    hub_rollup_queue row: the centre and the range of ids, kiosk.hub.rollup) and records the
    acknowledged sequence; the event_ids inserted. (Row by row through the ORM it cost ~0.5 ms
    an event, most of a push; the roll-ups in this statement were a third of it.)"""
    columns = ", ".join(EVENT_COLUMNS)
    with _driver(session).cursor() as cursor:
        cursor.execute(
            f"""WITH ack AS (
                    UPDATE hub_centre SET acked_seq = %(acked)s, last_push_at = %(now)s,
                           app_version = CASE WHEN %(app_version)s = '' THEN app_version ELSE %(app_version)s END
                    WHERE centre_id = %(centre)s
                ), inserted AS (
                    INSERT INTO hub_event ({columns}) SELECT {columns} FROM hub_event_incoming ORDER BY seq
                    ON CONFLICT (centre_id, event_id) DO NOTHING
                    RETURNING id, event_id
                ), queued AS (
                    INSERT INTO hub_rollup_queue (centre_id, first_id, last_id, events, queued_at)
                    SELECT %(centre)s, min(id), max(id), count(*), %(now)s FROM inserted HAVING count(*) > 0
                )
                SELECT event_id FROM inserted""",
            {"centre": centre_id, "acked": acked, "now": now, "app_version": app_version},
            prepare=True,  # planned once per connection (planning it took as long as running it)
        )
        return {event_id for (event_id,) in cursor.fetchall()}


def _month(day: date) -> date:
    return day.replace(day=1)


def _roll_up(session: Session, rows: Sequence[Mapping[str, Any]], scope_ids: Sequence[int], level: str) -> None:
    """The roll-ups of newly inserted events on a SQLite demo hub (PostgreSQL: in SQL, above)."""
    if not rows:
        return
    insert = _insert(session)
    daily: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    monthly: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    people: set[tuple] = set()
    for row in rows:
        points = _points(row["payload"])
        for figures in (daily[(row["centre_id"], row["day"], row["type"])], monthly[(row["centre_id"], _month(row["day"]), row["type"])]):
            figures[0] += 1
            figures[1] += points
        if row["type"] == PERSON_DAY_TYPE and row["person"]:
            people.add((row["day"], row["centre_id"], row["person"]))
    for model, column, sums in ((HubDaily, "day", daily), (HubMonthly, "month", monthly)):
        statement = insert(model)
        statement = statement.on_conflict_do_update(
            index_elements=["centre_id", column, "type"],
            set_={"events": model.events + statement.excluded.events, "points": model.points + statement.excluded.points},
        )
        session.execute(statement, [{"centre_id": c, column: d, "type": t, "events": n, "points": p} for (c, d, t), (n, p) in sorted(sums.items())])
    new_periods: dict[tuple, int] = defaultdict(int)
    for day, centre_id, person in sorted(people):
        if session.get(HubPersonDay, (day, centre_id, person)) is not None:
            continue
        session.add(HubPersonDay(day=day, centre_id=centre_id, person=person))
        candidates = [(centre_id, "m", _month(day)), (centre_id, "y", day.replace(month=1, day=1))]
        periods = (("m", _month(day)), ("y", day.replace(month=1, day=1)))
        candidates += [(scope_id, prefix + kind, start) for scope_id in scope_ids for prefix in ("b",) for kind, start in periods]
        candidates += [(scope_id, level_kind(level, kind), start) for scope_id in scope_ids for kind, start in periods]
        for scope_id, kind, start in candidates:
            if session.get(HubPeople, (scope_id, kind, start, person)) is None:
                session.add(HubPeople(scope_id=scope_id, kind=kind, start=start, person=person))
                new_periods[(scope_id, kind, start)] += 1
        session.flush()
    for (scope_id, kind, start), count in sorted(new_periods.items()):
        counter = session.get(HubPeopleCount, (scope_id, kind, start))
        if counter is None:
            session.add(HubPeopleCount(scope_id=scope_id, kind=kind, start=start, people=count))
        else:
            counter.people += count
    session.flush()


def forget_erased_people(session: Session, centre_id: int, rows: Sequence[Mapping[str, Any]]) -> int:
    """A centre erased a person (`kiosk privacy erase`): the hub forgets the link between the
    person's pseudonym and this centre's records. Each of the person's events, conflicts and
    days (the erasure event's own included) gets one fresh random token instead of the
    pseudonym, so the figures (events, distinct people) stay true and nothing leads back to the
    phone. payload_hash keeps the value it was received with, so a resent old event is still a
    duplicate, not a conflict that would bring the pseudonym back. Other centres' records are
    theirs to erase. Returns how many events were relinked."""
    changed = 0
    for row in rows:
        person = row.get("person")
        if not person:
            continue
        token = "erased-" + uuid.uuid4().hex
        for event in session.scalars(select(HubEvent).where(HubEvent.centre_id == centre_id, HubEvent.person == person)):
            event.person = token
            event.payload = {**event.payload, "person": token}
            changed += 1
        for conflict in session.scalars(select(HubConflict).where(HubConflict.centre_id == centre_id)):
            if conflict.payload.get("person") == person:
                conflict.payload = {**conflict.payload, "person": token}
        session.execute(update(HubPersonDay).where(HubPersonDay.centre_id == centre_id, HubPersonDay.person == person).values(person=token))
        # The centre's own distinct-people rows (month, year) too; a branch's rows stay, as the
        # person may have been seen at another centre of the branch.
        session.execute(
            update(HubPeople).where(HubPeople.scope_id == centre_id, HubPeople.kind.in_(("m", "y")), HubPeople.person == person).values(person=token)
        )
    session.flush()
    return changed


def hello(session: Session, key: HubKey, hub: HubSecrets) -> dict[str, Any]:
    state = session.get(HubCentre, key.centre_id)
    return {
        "centre": key.centre.code,
        "acked_seq": state.acked_seq if state else 0,
        "hub_public_key": hub.public_key,
        "max_batch_events": protocol.MAX_BATCH_EVENTS,
        "max_batch_bytes": protocol.MAX_BATCH_BYTES,
        "key_status": key.status.value,
    }


# ---- publications ----


def publish(session: Session, kind: str, key: str, data: Mapping[str, Any] | None, *, deleted: bool = False, now: datetime | None = None) -> HubPublication:
    """Create, change or delete (tombstone) a district publication; every change takes the
    next revision, under a table lock so two publishers never share one."""
    if kind not in PUBLICATION_KINDS:
        raise HubError("bad_kind", _l("Unknown kind of publication."), field="kind")
    key = (key or "").strip()
    if not 0 < len(key) <= 64:
        raise HubError("bad_key", _l("A publication needs a key of 1 to 64 characters."), field="key")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(7_000_001)))
    revision = (session.scalar(select(func.max(HubPublication.revision))) or 0) + 1
    publication = session.scalar(select(HubPublication).where(HubPublication.kind == kind, HubPublication.key == key))
    if publication is None:
        publication = HubPublication(kind=kind, key=key, data={})
        session.add(publication)
    publication.revision = revision
    publication.deleted = deleted
    if data is not None:
        publication.data = dict(data)
    publication.updated_at = now or utcnow()
    session.flush()
    return publication


def pull(session: Session, key: HubKey, cursor: int, *, limit: int = PULL_LIMIT, now: datetime | None = None) -> dict[str, Any]:
    items = list(session.scalars(select(HubPublication).where(HubPublication.revision > cursor).order_by(HubPublication.revision).limit(limit + 1)))
    more = len(items) > limit
    items = items[:limit]
    state = session.get(HubCentre, key.centre_id)
    if state is not None:
        state.last_pull_at = now or utcnow()
    return {
        "items": [{"revision": p.revision, "kind": p.kind, "key": p.key, "deleted": p.deleted, "data": None if p.deleted else p.data} for p in items],
        "cursor": items[-1].revision if items else cursor,
        "more": more,
    }
