"""The enrolled device is read on every kiosk request, on a reader connection of its own
(kiosk.devices.access, issue 11 part 5), so a revocation is seen at the device's very next
request, whoever committed it, also right after a burst of bookings.

Checked to fail without the safeguard: with ``_lookup`` keeping a device once read (the device
kept by its secret, as before part 5 but without any check), the three revocation tests below
get 200 instead of 403 after the revocation (the served one by running ``kiosk serve`` from a
copy of this tree with that change).
"""

from __future__ import annotations

import sqlite3
import urllib.error
import urllib.request

import pytest
from sqlalchemy import select, text

from kiosk.booking import services as booking
from kiosk.cache import commit_generation
from kiosk.devices import access
from kiosk.devices.access import DEVICE_COOKIE
from kiosk.devices.models import KioskDevice
from kiosk.devices.services import hash_secret, revoke_device
from kiosk.extensions import db
from tests.helpers import TEST_DEVICE_SECRET, Visitor, make_app


def test_each_kiosk_request_reads_the_device_once_on_a_reader_of_its_own(app, client, monkeypatch):
    """One read per request, outside the pool: the reader is given back and used again (no new
    connection per request), and no pool connection is checked out for it."""
    lookups: list[str] = []
    enrolled = access._enrolled
    monkeypatch.setattr(access, "_enrolled", lambda session, secret_hash: lookups.append(secret_hash) or enrolled(session, secret_hash))
    assert client.get("/").status_code == 200
    assert lookups == [hash_secret(TEST_DEVICE_SECRET)]
    with app.app_context():
        readers = access._readers.stack(db.engine)
        assert len(readers) == 1
        reader = readers[0]
        checked_out = db.engine.pool.checkedout()
    assert client.get("/").status_code == 200
    assert len(lookups) == 2
    with app.app_context():
        assert access._readers.stack(db.engine) == [reader]
        assert db.engine.pool.checkedout() == checked_out
        assert access.kept_devices() >= 1


def test_a_disposed_engine_gets_new_readers(app, client):
    """``kiosk restore`` disposes the engine before putting another file in place: no reader may
    keep reading the old one."""
    assert client.get("/").status_code == 200
    with app.app_context():
        old = access._readers.stack(db.engine)
        assert len(old) == 1
        db.session.remove()
        db.engine.dispose()
        assert access._readers.stack(db.engine) == []
    assert client.get("/").status_code == 200
    with app.app_context():
        assert len(access._readers.stack(db.engine)) == 1 and access._readers.stack(db.engine) is not old


def test_a_device_revoked_through_another_connection_is_refused_at_its_next_request(app, client, instance_path):
    assert client.get("/").status_code == 200
    assert client.get("/points").status_code == 200
    with sqlite3.connect(instance_path / "kiosk.sqlite3") as other:  # like `kiosk` commands or a second server
        other.execute(
            "UPDATE kiosk_device SET revoked_at = '2026-11-29 00:00:00.000000', secret_hash = NULL WHERE secret_hash = ?",
            (hash_secret(TEST_DEVICE_SECRET),),
        )
    other.close()
    assert client.get("/").status_code == 403
    assert client.get("/points").status_code == 403


def _get(url: str) -> int:
    request = urllib.request.Request(url, headers={"Cookie": f"{DEVICE_COOKIE}={TEST_DEVICE_SECRET}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def revoke_from_another_process(database) -> None:
    """This test process is the other process (as a second server or the staff CLI would be)."""
    other = make_app(database.parent)
    with other.app_context():
        device = db.session.scalar(select(KioskDevice).where(KioskDevice.secret_hash == hash_secret(TEST_DEVICE_SECRET)))
        assert device is not None
        revoke_device(db.session, device.id, actor=None)
        db.session.remove()
        db.engine.dispose()


def test_a_running_server_refuses_a_device_revoked_by_another_process(serve_process):
    served = serve_process()
    assert _get(served.url + "/") == 200
    assert _get(served.url + "/") == 200
    revoke_from_another_process(served.database)
    assert _get(served.url + "/") == 403
    assert _get(served.url + "/points") == 403


def test_a_core_commit_outside_any_session_is_seen_by_the_next_check(app, client):
    """``engine.begin()`` commits without a Session (no ``after_commit``), and a connection's own
    commit does not change its ``PRAGMA data_version``: kiosk.cache's engine-level ``commit``
    event is what makes the next check through that same connection see it. Fails without
    that listener (the revoked device gets 200)."""
    db.session.remove()
    db.engine.dispose()  # one pooled connection from here on: the check and the commit share it
    generation = commit_generation.check(db.session)
    assert commit_generation.check(db.session) == generation  # nothing committed: unchanged
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE kiosk_device SET name = name"))
    assert commit_generation.check(db.session) != generation

    assert client.get("/").status_code == 200
    assert client.get("/").status_code == 200
    db.session.remove()
    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE kiosk_device SET revoked_at = '2026-11-29 00:00:00.000000', secret_hash = NULL WHERE secret_hash = :hash"),
            {"hash": hash_secret(TEST_DEVICE_SECRET)},
        )
    assert client.get("/").status_code == 403


def test_a_device_revoked_by_another_process_right_after_bookings_is_refused_at_its_next_booking(serve_process):
    """Every booking commits; the revocation, committed by another process (the staff CLI or the
    desk's server) between two bookings, refuses the very next one and writes nothing."""
    from tests.web.test_booking_http_race import seed, tomorrow_key

    seeded, setup = seed(capacity=50)
    served = serve_process(setup=setup)
    kiosk = Visitor(served.url)
    kiosk.get("/booking")
    for i in range(8):
        status, body = kiosk.post(
            "/booking/book", {"service": seeded["service"], "slot": tomorrow_key(9), "request_key": booking.new_request_key(), "phone": f"137{i:08d}"}
        )
        assert status == 200, body[:300]
    revoke_from_another_process(served.database)
    status, _body = kiosk.post(
        "/booking/book", {"service": seeded["service"], "slot": tomorrow_key(9), "request_key": booking.new_request_key(), "phone": "13799999999"}
    )
    assert status == 403
    assert served.count("booking") == 8
    assert _get(served.url + "/booking") == 403


def test_a_reader_refuses_to_write(app):
    """The device reader is for that read only (PRAGMA query_only): a write slipped onto it
    fails instead of committing outside write_transaction."""
    with app.app_context():
        reader = access._readers.new(db.engine)
        try:
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                reader.execute("UPDATE kiosk_device SET name = name")
        finally:
            reader.close()
