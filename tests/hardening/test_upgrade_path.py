"""The upgrade path with data in it (issue 14): a database made at the first migration
(0001_foundation) and filled through raw SQL valid for that schema (a centre, a notice, a staff
account, an audit entry), then members, points, a reward and a redemption at 0002 as a kiosk of
that release would have written them; then every migration one at a time up to head (as
`kiosk db upgrade` after each release). After each step the rows are still there; at head the
app serves them: the staff account logs in, the member's page shows the balance, the notice
is on the home screen, and a new write on the old rows goes through.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from werkzeug.security import generate_password_hash

from kiosk.extensions import db
from tests.helpers import csrf_token, enrol_test_device, login, make_app

T = "2026-01-05 02:00:00.000000"  # UTC, as UTCDateTime stores it in SQLite
PASSWORD = "old-release-password-1"

AT_0001 = [
    ("INSERT INTO centre (id, code, name, level, parent_id) VALUES (1, 'XH-CY-CY1', '翠苑一区', 'community', NULL)", ()),
    ("INSERT INTO notice (key, source, title, body, published_at, expires_at) VALUES ('n1', 'centre', '元旦开放时间调整', '1月1日闭馆一天', ?, NULL)", (T,)),
    (
        "INSERT INTO staff_user (id, username, display_name, password_hash, role, active, created_at, last_login_at) VALUES (7, 'old.admin', '老管理员', ?, 'admin', 1, ?, NULL)",
        (generate_password_hash(PASSWORD), T),
    ),
    (
        "INSERT INTO audit_entry (at, actor_id, actor_name, action, target, detail, remote_addr) VALUES (?, 7, '老管理员', 'staff.login', 'staff:7', '', '127.0.0.1')",
        (T,),
    ),
]
AT_0002 = [
    (
        "INSERT INTO member (id, name, phone, community, age_band, consent_at, consent_version, active, card_serial, created_at, updated_at) "
        "VALUES (3, '张建华', '13812345678', '翠苑一区', '70-79', ?, '2026-01', 1, 1, ?, ?)",
        (T, T, T),
    ),
    (
        "INSERT INTO reward (id, name, description, cost, stock, active, picture, picture_type, created_at) VALUES (2, '环保袋', '', 20, 9, 1, NULL, NULL, ?)",
        (T,),
    ),
    ("INSERT INTO points_entry (member_id, delta, reason, reference, note, actor_id, created_at) VALUES (3, 55, 'correction', NULL, '开业补录', 7, ?)", (T,)),
    (
        "INSERT INTO redemption (id, member_id, reward_id, cost, pickup_code, status, channel, request_key, created_at, closed_at, closed_by_id, note) "
        "VALUES (1, 3, 2, 20, '482913', 'pending', 'kiosk', 'old-release-key', ?, NULL, NULL, '')",
        (T,),
    ),
    (
        "INSERT INTO points_entry (member_id, delta, reason, reference, note, actor_id, created_at) VALUES (3, -20, 'redemption', 'redemption:1', '', NULL, ?)",
        (T,),
    ),
]
KEPT = {
    "SELECT code, name FROM centre": [("XH-CY-CY1", "翠苑一区")],
    "SELECT title FROM notice": [("元旦开放时间调整",)],
    "SELECT username, role, active FROM staff_user": [("old.admin", "admin", 1)],
    "SELECT count(*) FROM audit_entry WHERE action = 'staff.login'": [(1,)],
}
KEPT_FROM_0002 = {
    "SELECT name, phone, age_band FROM member": [("张建华", "13812345678", "70-79")],
    "SELECT sum(delta) FROM points_entry WHERE member_id = 3": [(35,)],
    "SELECT pickup_code, status FROM redemption": [("482913", "pending")],
    "SELECT stock FROM reward": [(9,)],
}


AT_0006 = [
    (
        "INSERT INTO book (id, title, subtitle, authors, publisher, year, isbn, call_number, clc_class, subjects, summary, cover, source_key, "
        "search_title, search_text, pinyin_title, pinyin_other, pinyin_initials, pinyin_full, chars_title, chars_text, created_at, updated_at) "
        "VALUES (5, '红楼梦', '', '曹雪芹', '人民文学出版社', 1996, '9787020002207', 'I242.4/1', 'I', '', '', NULL, 'isbn:9787020002207', "
        "'红楼梦', '曹雪芹 人民文学出版社', 'hong lou meng', 'cao xue qin', 'hlm', 'hongloumeng', '红楼梦', '曹雪芹', ?, ?)",
        (T, T),
    ),
]
KEPT_FROM_0006 = {"SELECT title, authors FROM book": [("红楼梦", "曹雪芹")]}
# 0010_title_fts's data step: the books already there are indexed for the title search.
KEPT_FROM_0010 = {"SELECT rowid FROM book_title_fts WHERE book_title_fts MATCH '\"红楼梦\"'": [(5,)]}
DATA = {
    "0001_foundation": (AT_0001, KEPT),
    "0002_members_points": (AT_0002, KEPT_FROM_0002),
    "0006_catalogue": (AT_0006, KEPT_FROM_0006),
    "0010_title_fts": ([], KEPT_FROM_0010),
}


def upgrade_step_by_step(app, database: Path, *, sabotage: dict[str, str] | None = None) -> list[str]:
    """Every migration one at a time, the old release's rows written at their revision, the
    checker run after each step (``sabotage``: SQL run right after a step, to break it)."""
    script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert revisions[0] == "0001_foundation" and len(revisions) >= 7
    checks: dict = {}
    for revision in revisions:
        upgrade(revision=revision)
        db.engine.dispose()
        with sqlite3.connect(database) as raw:
            if (sql := (sabotage or {}).get(revision)) is not None:
                raw.execute(sql)
            rows, kept = DATA.get(revision, ([], {}))
            for sql, args in rows:
                raw.execute(sql, args)
            checks |= kept
            check_step(raw, revision, checks)
    assert revisions[-1] == script.get_current_head()
    return revisions


def check_step(raw: sqlite3.Connection, revision: str, checks: dict) -> None:
    """The checker: at ``revision``, every row kept and every data step done."""
    assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [(revision,)]
    assert {sql: raw.execute(sql).fetchall() for sql in checks} == checks, f"after {revision}"
    assert raw.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_database_from_the_first_release_upgrades_step_by_step_and_is_served(tmp_path: Path):
    instance = tmp_path / "instance"
    instance.mkdir()
    database = instance / "kiosk.sqlite3"
    app = make_app(instance)
    with app.app_context():
        upgrade_step_by_step(app, database)
        enrol_test_device(db.session)
        db.session.commit()
        db.session.remove()

    client = app.test_client()
    home = client.get("/").get_data(as_text=True)
    assert "元旦开放时间调整" in home
    assert login(client, "old.admin", PASSWORD).status_code == 302
    member_page = client.get("/staff/members/3").get_data(as_text=True)
    assert "张建华" in member_page and "35" in member_page
    assert "482913" in client.get("/staff/rewards/redemptions").get_data(as_text=True)
    token = csrf_token(client, "/staff/members/3")
    saved = client.post("/staff/members/3/points", data={"delta": "5", "note": "升级后补录", "csrf_token": token})
    assert saved.status_code == 302
    with sqlite3.connect(database) as raw:
        assert raw.execute("SELECT sum(delta) FROM points_entry WHERE member_id = 3").fetchone() == (40,)
        assert raw.execute("SELECT session_version FROM staff_user WHERE id = 7").fetchone() == (0,)
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert "红楼梦" in client.get("/catalogue/search?q=红楼梦").get_data(as_text=True)


# ---- the checker can fail: a migration that skipped its data step, one that lost rows ----

SABOTAGE = {
    # 0010 made its index but never filled it from the books already there.
    "0010_title_fts": ("0010_title_fts", "INSERT INTO book_title_fts(book_title_fts) VALUES ('delete-all')"),
    # A table rebuild (batch_alter_table) that dropped the old release's points.
    "0003_checkin": ("0003_checkin", "DELETE FROM points_entry WHERE reason = 'correction'"),
}


@pytest.mark.parametrize("broken", list(SABOTAGE))
def test_the_upgrade_checker_reports_a_skipped_data_step(tmp_path: Path, broken: str):
    revision, sql = SABOTAGE[broken]
    app = make_app(tmp_path)
    with app.app_context(), pytest.raises(AssertionError, match=f"after {revision}"):
        upgrade_step_by_step(app, tmp_path / "kiosk.sqlite3", sabotage={revision: sql})
