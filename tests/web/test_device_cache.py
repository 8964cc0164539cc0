"""The enrolled device is kept in process between requests (issue 9 part 3, kiosk.devices.access),
but a revocation is seen at the device's very next request, whoever committed it.

Checked to fail without the safeguard: with kiosk.cache's ``PRAGMA data_version`` check made a
no-op (``_see`` returning without a bump), both revocation tests below get 200 instead of 403
after the revocation; with the ``after_commit`` bump removed, the staff-page revocation test
in test_security_devices.py does.
"""

from __future__ import annotations

import sqlite3
import urllib.error
import urllib.request

from sqlalchemy import select, text

from kiosk.cache import commit_generation
from kiosk.devices.access import DEVICE_COOKIE
from kiosk.devices.models import KioskDevice
from kiosk.devices.services import hash_secret, revoke_device
from kiosk.extensions import db
from tests.helpers import TEST_DEVICE_SECRET, make_app


def test_the_device_is_looked_up_once_then_kept(app, client, monkeypatch):
    # The lookup reads on the DBAPI connection when it can (kiosk.devices.access._enrolled), out
    # of SQLAlchemy's sight: count the lookups themselves.
    from kiosk.devices import access

    lookups: list[str] = []
    enrolled = access._enrolled
    monkeypatch.setattr(access, "_enrolled", lambda session, secret_hash: lookups.append(secret_hash) or enrolled(session, secret_hash))
    assert client.get("/").status_code == 200
    assert lookups == [hash_secret(TEST_DEVICE_SECRET)]
    assert client.get("/").status_code == 200
    assert len(lookups) == 1


def test_a_device_revoked_through_another_connection_is_refused_at_its_next_request(app, client, instance_path):
    assert client.get("/").status_code == 200
    assert client.get("/points").status_code == 200  # kept now
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


def test_a_running_server_refuses_a_device_revoked_by_another_process(serve_process):
    served = serve_process()
    assert _get(served.url + "/") == 200
    assert _get(served.url + "/") == 200  # kept by the server now
    # This test process is the other process (as a second server or the staff CLI would be).
    other = make_app(served.database.parent)
    with other.app_context():
        device = db.session.scalar(select(KioskDevice).where(KioskDevice.secret_hash == hash_secret(TEST_DEVICE_SECRET)))
        assert device is not None
        revoke_device(db.session, device.id, actor=None)
        db.session.remove()
        db.engine.dispose()
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
    assert client.get("/").status_code == 200  # kept now
    db.session.remove()
    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE kiosk_device SET revoked_at = '2026-11-29 00:00:00.000000', secret_hash = NULL WHERE secret_hash = :hash"),
            {"hash": hash_secret(TEST_DEVICE_SECRET)},
        )
    assert client.get("/").status_code == 403
