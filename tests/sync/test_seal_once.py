"""Seal once per person, open once per person (issue 13's ingest speed; docs/sync.md).

A kiosk process seals a phone once per hub key (kiosk.sync.protocol.seal, a bounded LRU); the
hub memoises sealed value -> pseudonym per worker (HubSecrets.person_of, a bounded LRU). No
database needed."""

from __future__ import annotations

import base64
import math
import uuid
from datetime import UTC, datetime

import pytest
from nacl.bindings import crypto_box_seal_open
from nacl.exceptions import CryptoError

from kiosk.hub import services
from kiosk.hub.services import HubError, HubSecrets
from kiosk.sync import protocol
from kiosk.sync.protocol import forget_seals, new_box_keypair, public_key_of, seal


def _opened(private_b64: str, sealed: str) -> str:
    private = base64.b64decode(private_b64)
    return crypto_box_seal_open(base64.b64decode(sealed), base64.b64decode(public_key_of(private_b64)), private).decode()


def _hub(private: str, **kwargs) -> HubSecrets:
    return HubSecrets((private,), b"test-pseudonym-key", **kwargs)


@pytest.fixture(autouse=True)
def _fresh_process():
    forget_seals()
    yield
    forget_seals()


def _checkins(sealed_values: list[str]) -> list[dict]:
    return [
        {
            "seq": i + 1,
            "event_id": str(uuid.uuid4()),
            "type": "checkin.created",
            "schema_version": 1,
            "occurred_at": datetime(2026, 11, 28, 2, i % 60, tzinfo=UTC).isoformat(),
            "payload": {"checkin_id": i + 1, "points": 5, "person_sealed": value},
        }
        for i, value in enumerate(sealed_values)
    ]


def test_a_kiosk_seals_a_person_once_per_hub_key_and_a_rolled_key_gives_new_values():
    old_private, old_public = new_box_keypair()
    new_private, new_public = new_box_keypair()
    first = seal(old_public, "13900000001")
    assert seal(old_public, "13900000001") == first  # every event of the person: one value
    assert seal(old_public, "13900000002") != first
    rolled = seal(new_public, "13900000001")  # the hub rolled its box key
    assert rolled != first and _opened(new_private, rolled) == "13900000001"
    with pytest.raises(CryptoError):
        _opened(old_private, rolled)
    forget_seals()  # another kiosk process (or this one restarted): unrelated values
    assert seal(old_public, "13900000001") != first
    assert _opened(old_private, first) == "13900000001"


def test_the_kiosk_cache_of_seals_is_bounded():
    _private, public = new_box_keypair()
    for n in range(protocol.SEAL_CACHE_SIZE + 50):
        seal(public, f"139{n:08d}")
    assert protocol.cached_seals() == protocol.SEAL_CACHE_SIZE


def test_the_hub_opens_a_sealed_value_once_and_computes_one_pseudonym(monkeypatch):
    """Shown to fail without the memo (_clean_events calling open_sealed per event): 300
    openings for 300 check-ins of 3 people instead of 3."""
    private, public = new_box_keypair()
    hub = _hub(private)
    opened: list[str] = []
    real_open = HubSecrets.open_sealed
    monkeypatch.setattr(HubSecrets, "open_sealed", lambda self, sealed: opened.append(sealed) or real_open(self, sealed))
    phones = ["13900000001", "13900000002", "13900000003"]
    rows = services._clean_events(_checkins([seal(public, phones[i % 3]) for i in range(300)]), hub)
    assert len(opened) == 3
    assert {row["person"] for row in rows} == {hub.pseudonym(phone) for phone in phones}
    assert all(row["person"] == hub.pseudonym(phones[i % 3]) for i, row in enumerate(rows))
    # Another kiosk seals the same phone to another value: opened once more, same pseudonym.
    forget_seals()
    again = services._clean_events(_checkins([seal(public, phones[0])]), hub)
    assert len(opened) == 4 and again[0]["person"] == hub.pseudonym(phones[0])
    # What the memo keeps: sealed value -> pseudonym; no phone among its keys or values.
    assert hub._memo.cache_info().currsize == 4


def test_the_hub_memo_is_bounded_and_forgets_the_least_recently_used(monkeypatch):
    private, public = new_box_keypair()
    hub = _hub(private, memo_size=4)
    opened: list[str] = []
    real_open = HubSecrets.open_sealed
    monkeypatch.setattr(HubSecrets, "open_sealed", lambda self, sealed: opened.append(sealed) or real_open(self, sealed))
    values = [seal(public, f"139000000{n:02d}") for n in range(10)]
    for value in values:
        hub.person_of(value)
    assert hub._memo.cache_info().currsize == 4 and len(opened) == 10
    hub.person_of(values[-1])  # still held
    assert len(opened) == 10
    assert hub.person_of(values[0]) == hub.pseudonym("13900000000")  # evicted: opened again
    assert len(opened) == 11


def test_an_unreadable_sealed_value_is_refused_every_time_and_not_memoised():
    private, _public = new_box_keypair()
    _other_private, other_public = new_box_keypair()
    hub = _hub(private)
    foreign = seal(other_public, "13900000001")
    for _ in range(2):
        with pytest.raises(HubError):
            hub.person_of(foreign)
    assert hub._memo.cache_info().currsize == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"points": 5, "category": "culture", "method": "kiosk_phone", "checkin_id": 7},
        {"z": [1, 2.5, None, True, {"b": "翠苑", "a": "x"}], "reward": "环保袋", "points": -20, "day": "2026-11-28"},
        {},
        {"text": 'quote " backslash \\ tab \t emoji 😀'},
        # what orjson and the standard library might write differently (services._dump_sorted)
        {"control": "\x01\x08\x0c\x1f\x7f\u2028\u2029/<>&", "big": 2**63 - 1, "small": -(2**63)},
        {"bigger": 2**64},
        {"floats": [1e-05, 1e16, 0.1, -0.0, 1.0, 123456789.125], "nested": {"b": [{"d": 1, "c": None}], "a": False}},
        {"é": 1, "E": 2, "e": 3, "中": [], "": {}},
    ],
)
def test_one_dump_gives_the_hash_resends_of_events_stored_before_still_match(payload):
    """payload_hash is compared with rows stored by earlier versions: it must stay
    canonical_hash of the stored event, byte for byte."""
    occurred = datetime(2026, 11, 28, 2, 3, 4, 567000, tzinfo=UTC).isoformat()
    stored = {"type": "checkin.created", "schema_version": 1, "occurred_at": occurred, "payload": payload}
    canonical = services._canonical("checkin.created", 1, occurred, payload)
    assert canonical is not None
    assert canonical[1] == protocol.canonical_hash(stored)


@pytest.mark.parametrize(
    ("type_", "payload"),
    [
        ("checkin.created", {"x": math.nan}),
        ("checkin.created", {"x": math.inf}),
        ("checkin.created", {"x": "a\x00b"}),
        ("checkin.created", {"x": "\ud800"}),
        ("check\x00in", {}),
        ("check\ud800", {}),
    ],
)
def test_what_postgresql_would_refuse_is_refused(type_, payload):
    assert services._canonical(type_, 1, "2026-11-28T02:03:04+00:00", payload) is None
