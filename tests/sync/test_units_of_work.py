"""Units of work: no view, API or command commits; services own their transaction
(kiosk.db.write_transaction), and a read ends with a rollback."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import func, select

import kiosk
from kiosk.sync import services
from kiosk.sync.models import SyncState
from tests.helpers import login

COMMIT = re.compile(r"\.commit\(")


def test_no_view_api_or_command_commits():
    """Every write goes through write_transaction; a view, API or CLI module that commits is a
    unit of work in the wrong place. Shown to fail on the code before (kiosk/hub/views.py,
    api.py, cli.py and kiosk/sync/views.py committed 13 times)."""
    root = Path(kiosk.__file__).parent
    found = {}
    for path in sorted(root.rglob("*.py")):
        if path.name in ("views.py", "api.py", "cli.py"):
            count = len(COMMIT.findall(path.read_text(encoding="utf-8")))
            if count:
                found[path.relative_to(root).as_posix()] = count
    assert found == {}


def test_the_sync_page_reads_without_writing_a_sync_state_row(client, make_staff, session):
    """Before the first enrolment there is no sync_state row: the page shows defaults and
    leaves none behind (it used to insert one and commit to end the read)."""
    make_staff("chen.admin", "correct-horse-2", "admin")
    login(client, "chen.admin", "correct-horse-2")
    response = client.get("/staff/sync/")
    assert response.status_code == 200
    session.rollback()
    assert session.scalar(select(func.count()).select_from(SyncState)) == 0
    state = services.sync_status(session)
    assert (state.key_id, state.acked_seq, state.pull_cursor, state.last_error) == ("", 0, 0, "")
    assert not session.new and session.scalar(select(func.count()).select_from(SyncState)) == 0
