"""The staff status (watchdog) page: what an administrator checks when the kiosk misbehaves."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from kiosk.ops import backup as backups
from tests.helpers import login


def test_an_admin_sees_uptime_backup_disk_database_sync_and_the_doctor_checks(app, client, make_staff, instance_path, tmp_path):
    make_staff("zhou.admin", "correct-horse-1", role="admin")
    backups.backup(instance_path / "kiosk.sqlite3", instance_path, tmp_path / "b", centre="XH", zone=ZoneInfo("Asia/Shanghai"), keep=1)
    login(client, "zhou.admin", "correct-horse-1")
    page = client.get("/staff/status/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for text in ("运行状态", "启动时间", "最近备份", "kiosk-XH-", "磁盘空间", "数据库大小", "上次成功同步", "数据库完整性", "二维码中的地址", "处理方法"):
        assert text in html, text
    assert 'data-check="public_address"' in html and "check-failed" in html  # PUBLIC_BASE_URL is not set in the tests
    assert "staff/status" in client.get("/staff/").get_data(as_text=True)  # in the admin's menu


def test_the_status_page_is_for_administrators_only(app, client, make_staff):
    assert app.test_client().get("/staff/status/").status_code == 302  # to the login page
    make_staff("wang.li", "correct-horse-1", role="staff")
    login(client, "wang.li", "correct-horse-1")
    assert client.get("/staff/status/").status_code == 403
