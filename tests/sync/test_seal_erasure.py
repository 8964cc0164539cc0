"""An erased person's sealed value leaves the kiosk's seal cache (kiosk.sync.protocol.seal).

The cache maps (hub key, phone) -> sealed value in each kiosk process. `kiosk privacy erase`
drops the person's entry in its own process and moves a marker in the instance folder; every
other process of the kiosk (the server, which sealed the person's check-ins) drops what it
keeps at its next seal. Real SQLite, the real CLI command through Flask's runner."""

from __future__ import annotations

import pytest

from kiosk.checkin.models import CheckinMethod
from kiosk.checkin.services import check_in
from kiosk.cli import main
from kiosk.db import write_transaction
from kiosk.sync import erasure_marker, protocol
from kiosk.sync.models import SyncState
from kiosk.sync.protocol import forget_seals, new_box_keypair, seal
from tests.helpers import open_activity_now, register
from tests.services.test_privacy_rights import RULES

PHONE, OTHER = "13812345678", "13912345678"


@pytest.fixture(autouse=True)
def _fresh_process():
    forget_seals()
    yield
    forget_seals()


def _kept(phone: str) -> bool:
    return any(key[1] == phone for key in protocol._SEALS)


@pytest.fixture
def enrolled(app, session) -> str:
    _private, public = new_box_keypair()
    with write_transaction(session):
        session.add(SyncState(id=1, hub_url="http://hub.invalid", key_id="k", key_secret="s", hub_public_key=public))
    activity = open_activity_now(session, title="书法课", points="5")
    session.commit()
    register(session, name="张建华", phone=PHONE)
    register(session, name="李秀英", phone=OTHER)
    for phone in (PHONE, OTHER):
        check_in(session, activity.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone=phone)
    return public


def test_erasing_a_person_drops_their_sealed_value_and_keeps_the_others(app, session, enrolled):
    """Shown to fail without the drop (erase_person not calling protocol.note_erasure): the
    erased number stayed in the cache until 4,096 other people pushed it out."""
    assert _kept(PHONE) and _kept(OTHER)
    result = app.test_cli_runner().invoke(main, ["privacy", "erase", "--phone", PHONE, "--yes"])
    assert result.exit_code == 0, result.output
    assert not _kept(PHONE)
    assert _kept(OTHER)  # this process knows whose it was: the others stay
    assert erasure_marker(app).exists()


def test_the_server_process_drops_its_seals_when_an_erasure_elsewhere_moves_the_marker(app, session, enrolled):
    """The erasure ran in another process (`kiosk privacy erase`): this process only sees the
    marker move, and drops every sealed value at its next seal. Shown to fail without the watch
    (seal() not checking the marker)."""
    assert _kept(PHONE)
    with open(erasure_marker(app), "a", encoding="ascii") as marker:  # what note_erasure writes there
        marker.write(".")
    seal(enrolled, "13700001111")  # the next check-in of anyone
    assert not _kept(PHONE) and not _kept(OTHER)
    assert _kept("13700001111")


def test_the_seal_cache_keeps_working_after_an_erasure(app, session, enrolled):
    first = seal(enrolled, OTHER)
    assert seal(enrolled, OTHER) == first
    protocol.note_erasure(erasure_marker(app), PHONE)
    assert seal(enrolled, OTHER) == first  # this process moved the marker itself: nothing else dropped
    again = seal(enrolled, PHONE)
    assert again == seal(enrolled, PHONE)
