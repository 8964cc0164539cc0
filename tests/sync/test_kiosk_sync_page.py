"""The kiosk's staff sync page (SQLite only: no hub needed)."""

from __future__ import annotations

from datetime import UTC, datetime

from kiosk.sync import views
from kiosk.sync.models import SyncState
from tests.helpers import csrf_token, login
from tests.sync.helpers import fill_outbox


class _Kiosk:
    def __init__(self, database):
        self.database = database


def test_admins_see_last_success_pending_and_last_error_and_can_start_a_sync(app, session, client, make_staff, instance_path, monkeypatch):
    make_staff("chen.admin", "correct-horse-2", "admin")
    fill_outbox(_Kiosk(instance_path / "kiosk.sqlite3"), 7)
    session.add(
        SyncState(
            id=1,
            hub_url="http://hub.example",
            centre_code="XH-CY-CY1",
            key_id="k_1",
            key_secret="s",
            acked_seq=2,
            last_success_at=datetime(2026, 11, 27, 14, 5, tzinfo=UTC),
            last_error="hub_unreachable: timed out",
        )
    )
    session.commit()
    login(client, "chen.admin", "correct-horse-2")
    html = client.get("/staff/sync/").get_data(as_text=True)
    assert '<dd id="pending">5</dd>' in html  # 7 written, the hub holds 2
    assert "2026-11-27 22:05" in html  # in the centre's time
    assert "hub_unreachable: timed out" in html
    started = []
    monkeypatch.setattr(views.subprocess, "Popen", lambda args, **kwargs: started.append((args, kwargs["env"]["KIOSK_INSTANCE_PATH"])))
    response = client.post("/staff/sync/now", data={"csrf_token": csrf_token(client, "/staff/sync/")})
    assert response.status_code == 302
    assert started and started[0][0][-4:] == ["sync", "--quiet", "--budget", "120"] and started[0][1] == app.instance_path


def test_staff_without_the_admin_role_cannot_open_it(client, make_staff):
    make_staff("li.staff", "correct-horse-1", "staff")
    login(client, "li.staff", "correct-horse-1")
    assert client.get("/staff/sync/").status_code == 403
    assert client.post("/staff/sync/now", data={"csrf_token": csrf_token(client, "/staff/")}).status_code == 403
