"""`kiosk backup`, `kiosk restore`, `kiosk doctor` and the log file, on real instance folders:
a real `kiosk serve` process, real SQLite files, a real HTTP "hub" for the clock check."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import closing
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kiosk.cli import main
from kiosk.config import PROJECT_ROOT
from kiosk.ops import backup as backups
from kiosk.ops.logs import install_file_logging
from kiosk.privacy import PhoneMaskingFilter
from tests.helpers import TEST_SECRET, TEST_SIGNING_KEY, make_app

ZONE = ZoneInfo("Asia/Shanghai")
CONFIG = 'CENTRE_CODE = "XH-CY-CY1"\nCENTRE_NAME = "翠苑一区"\nSECRET_KEY = "s-from-toml"\n'


def invoke(instance: Path, *args: str, **config):
    app = make_app(instance, **config)
    result = app.test_cli_runner().invoke(main, list(args))
    from kiosk.extensions import db

    with app.app_context():
        db.engine.dispose()
    return result


def members(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        rows = [r[0] for r in connection.execute("SELECT name FROM member ORDER BY id")]
    connection.close()
    return rows


def add_member(database: Path, name: str, phone: str) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO member (name, phone, community, age_band, consent_at, consent_version, active, card_serial, created_at, updated_at) "
            "VALUES (?, ?, '', '70-79', '2026-11-01 00:00:00', '2026-11', 1, 1, datetime('now'), datetime('now'))",
            (name, phone),
        )
        connection.execute(
            "INSERT INTO audit_entry (at, actor_name, action, target, detail, remote_addr) VALUES (strftime('%Y-%m-%d %H:%M:%f', 'now'), 'test', 'member.register', '', '', '')"
        )
    connection.close()


class Server:
    """`kiosk serve` as its own process on an instance folder (as systemd runs it)."""

    def __init__(self, instance: Path):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
        env |= {"KIOSK_INSTANCE_PATH": str(instance), "KIOSK_SECRET_KEY": TEST_SECRET, "KIOSK_SIGNING_KEY": TEST_SIGNING_KEY, "KIOSK_DISTRICT_KEY": "d"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "serve", "--port", str(self.port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(400):
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("kiosk did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def served(instance_path):
    (instance_path / "kiosk.toml").write_text(CONFIG, encoding="utf-8")
    add_member(instance_path / "kiosk.sqlite3", "张建华", "13812345678")
    server = Server(instance_path)
    yield server
    server.stop()


def test_backup_while_serving_then_restore_round_trip(served, instance_path):
    database = instance_path / "kiosk.sqlite3"
    # A writer holds the write lock (and has not committed) while the backup runs: the backup
    # neither waits for it nor contains its half-done row.
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE member SET name = '未提交' WHERE name = '张建华'")
    made = invoke(instance_path, "backup", "--keep", "3")
    writer.execute("ROLLBACK")
    writer.close()
    assert made.exit_code == 0, made.output
    assert "备份已写入" in made.output and "内含密钥" in made.output
    assert urllib.request.urlopen(served.url + "/healthz", timeout=5).status == 200  # still serving
    backup_file = next((instance_path / "backups").glob("kiosk-XH-CY-CY1-*.sqlite3"))
    assert backups.integrity(backup_file) == "ok" and members(backup_file) == ["张建华"]
    assert backup_file.with_suffix(".toml").read_text(encoding="utf-8") == CONFIG
    assert backup_file.stat().st_mode & 0o077 == 0 and backup_file.with_suffix(".toml").stat().st_mode & 0o077 == 0
    assert backups.last_backup(instance_path)["path"] == str(backup_file)

    # The server holds its lock: restore refuses to pull the database from under it.
    refused = invoke(instance_path, "restore", str(backup_file))
    assert refused.exit_code == 1 and "终端服务正在运行" in refused.output
    served.stop()

    # Later records and a changed config: restoring would lose them, so --force is needed.
    time.sleep(0.01)
    add_member(database, "李秀英", "13900001111")
    (instance_path / "kiosk.toml").write_text(CONFIG + "IDLE_SECONDS = 30\n", encoding="utf-8")
    newer = invoke(instance_path, "restore", str(backup_file))
    assert newer.exit_code == 1 and "更新的记录" in newer.output and "--force" in newer.output
    assert members(database) == ["张建华", "李秀英"]
    forced = invoke(instance_path, "restore", str(backup_file), "--force")
    assert forced.exit_code == 0, forced.output
    assert members(database) == ["张建华"] and backups.integrity(database) == "ok"
    assert (instance_path / "kiosk.toml").read_text(encoding="utf-8") == CONFIG
    assert "IDLE_SECONDS = 30" in (instance_path / "kiosk.toml.before-restore").read_text(encoding="utf-8")
    safety = next((instance_path / "backups").glob("*-before-restore.sqlite3"))
    assert members(safety) == ["张建华", "李秀英"]  # what was replaced is kept
    # The kiosk starts again on the restored file with no manual step.
    again = Server(instance_path)
    try:
        assert urllib.request.urlopen(again.url + "/healthz", timeout=5).status == 200
    finally:
        again.stop()
    # Restoring the same backup over an unchanged database needs no --force.
    assert invoke(instance_path, "restore", str(backup_file)).exit_code == 0


def test_backup_keeps_the_newest_n_and_a_usb_path_is_just_a_folder(instance_path, tmp_path):
    database, usb = instance_path / "kiosk.sqlite3", tmp_path / "media" / "usb"
    start = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
    for day in range(4):
        backups.backup(database, instance_path, usb, centre="XH-CY-CY1", zone=ZONE, keep=2, now=start + timedelta(days=day))
    left = sorted(p.name for p in usb.iterdir())
    assert left == ["kiosk-XH-CY-CY1-20261103-090000.sqlite3", "kiosk-XH-CY-CY1-20261104-090000.sqlite3"]  # no config in this instance
    with pytest.raises(backups.BackupError) as error:
        backups.backup(database, instance_path, usb, centre="XH-CY-CY1", zone=ZONE, keep=0)
    assert error.value.code == "bad_keep"
    result = invoke(instance_path, "backup", "--dest", str(tmp_path / "stick"), "--keep", "1")
    assert result.exit_code == 0 and len(list((tmp_path / "stick").glob("*.sqlite3"))) == 1


def test_restore_refuses_a_damaged_backup_and_changes_nothing(instance_path, tmp_path):
    database = instance_path / "kiosk.sqlite3"
    good = backups.backup(database, instance_path, tmp_path, centre="XH", zone=ZONE, keep=5).database
    damaged = tmp_path / "kiosk-XH-20261101-000000.sqlite3"
    data = bytearray(good.read_bytes())
    for page in range(2, len(data) // 4096):  # scribble over every page but the first
        data[page * 4096 + 100 : page * 4096 + 400] = os.urandom(300)
    damaged.write_bytes(bytes(data))
    before = database.read_bytes()
    refused = invoke(instance_path, "restore", str(damaged), "--force")
    assert refused.exit_code == 1 and "未通过完整性检查" in refused.output
    not_sqlite = tmp_path / "notes.sqlite3"
    not_sqlite.write_text("hello", encoding="utf-8")
    assert "未通过完整性检查" in invoke(instance_path, "restore", str(not_sqlite), "--force").output
    assert "没有备份文件" in invoke(instance_path, "restore", str(tmp_path / "missing.sqlite3")).output
    assert database.read_bytes() == before


def test_restore_refuses_a_backup_whose_schema_names_are_not_utf8(instance_path, tmp_path):
    """A scribbled schema can name an object in bytes that are not UTF-8: SQLite's complaint
    carries them and Python's sqlite3 raises UnicodeDecodeError, not DatabaseError (seen when
    the random scribble above hit sqlite_master). Still a clear refusal, nothing changed."""
    damaged = tmp_path / "kiosk-XH-20261102-000000.sqlite3"
    with closing(sqlite3.connect(damaged)) as connection:
        connection.execute("CREATE TABLE zzzzzz (a)")
        connection.commit()
    data = bytearray(damaged.read_bytes())
    at = data.find(b"zzzzzz")
    data[at : at + 6] = b"\xb1\xb0\xa0\xf9\xbd\x10"  # the name column of sqlite_master
    at = data.find(b"(a)")
    data[at : at + 3] = b"(a "  # and its CREATE statement cut short: a malformed schema
    damaged.write_bytes(bytes(data))
    before = (instance_path / "kiosk.sqlite3").read_bytes()
    refused = invoke(instance_path, "restore", str(damaged), "--force")
    assert refused.exit_code == 1 and "未通过完整性检查" in refused.output, refused
    assert "malformed database schema" in refused.output
    assert (instance_path / "kiosk.sqlite3").read_bytes() == before


class FakeHub(BaseHTTPRequestHandler):
    """Answers the hub-key endpoint with a Date header ``offset`` off the true time."""

    offset = timedelta(0)

    def do_GET(self):
        body = b'{"hub_public_key": "x", "protocol": 1}'
        self.send_response_only(200)
        self.send_header("Date", format_datetime(datetime.now(UTC) + self.offset, usegmt=True))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def enrol_with(database: Path, hub_url: str) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO sync_state (id, hub_url, centre_code, key_id, key_secret, hub_public_key, acked_seq, pull_cursor, last_error) "
            "VALUES (1, ?, 'XH-CY-CY1', 'k_test', 's', '', 0, 0, '')",
            (hub_url,),
        )
    connection.close()


LAN = {"PUBLIC_BASE_URL": "http://192.168.1.20:8000", "SERVE_HOST": "0.0.0.0"}


def test_doctor_passes_a_healthy_kiosk_and_says_what_to_fix_in_chinese(instance_path, tmp_path, fake_hub):
    database = instance_path / "kiosk.sqlite3"
    backups.backup(database, instance_path, tmp_path / "b", centre="XH", zone=ZONE, keep=2)
    enrol_with(database, f"http://127.0.0.1:{fake_hub.server_port}")
    healthy = invoke(instance_path, "doctor", **LAN)
    assert healthy.exit_code == 0, healthy.output
    for line in ("✓ 配置与密钥", "✓ 数据库完整性", "✓ 数据库结构", "✓ 磁盘空间", "✓ 备份", "✓ 时钟", "– 小票打印机", "✓ 二维码中的地址", "全部检查通过"):
        assert line in healthy.output, line

    FakeHub.offset = timedelta(minutes=7)
    try:
        sick = invoke(instance_path, "doctor", PUBLIC_BASE_URL="http://127.0.0.1:8000", RECEIPT_PRINTER="network:127.0.0.1:9", DOCTOR_MIN_FREE_MB=10**9)
    finally:
        FakeHub.offset = timedelta(0)
    assert sick.exit_code == 1
    out = sick.output
    assert "✗ 时钟" in out and "timedatectl" in out
    assert "✗ 二维码中的地址" in out and "回环地址" in out and "PUBLIC_BASE_URL" in out
    assert "✗ 小票打印机" in out and "✗ 磁盘空间" in out
    assert "处理方法：" in out and "发现 4 个问题" in out


def test_doctor_finds_a_schema_behind_an_unreachable_hub_and_a_missing_backup(instance_path):
    database = instance_path / "kiosk.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0007_sync'")
    connection.close()
    enrol_with(database, "http://127.0.0.1:9")  # nothing listens on the discard port
    out = invoke(instance_path, "doctor", **LAN).output
    assert "✗ 数据库结构" in out and "kiosk db upgrade" in out
    assert "✗ 区级平台" in out and "网线" in out
    assert "✗ 备份" in out and "kiosk backup" in out


def test_the_log_file_rotates_and_every_line_is_masked(tmp_path):
    logger = logging.getLogger("kiosk.test.rotation")
    logger.propagate = False
    handler = install_file_logging({"LOG_FILE": "logs/kiosk.log", "LOG_MAX_BYTES": 2000, "LOG_BACKUP_COUNT": 2}, tmp_path, logger=logger)
    assert handler is not None
    try:
        assert all(any(isinstance(f, PhoneMaskingFilter) for f in h.filters) for h in logger.handlers)
        for i in range(200):
            logger.info("check-in %d by 13812345678", i)
        # A record made without the process's record factory (a library's own) is masked by
        # the handler's filter all the same.
        logger.handle(logging.LogRecord("lib", logging.INFO, __file__, 1, "raw %s", ("13987654321",), None))
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["kiosk.log", "kiosk.log.1", "kiosk.log.2"]
    text = "".join((tmp_path / "logs" / name).read_text(encoding="utf-8") for name in files)
    assert "138****5678" in text and "139****4321" in text
    assert "13812345678" not in text and "13987654321" not in text
    assert all((tmp_path / "logs" / name).stat().st_size <= 2000 for name in files)


def test_kiosk_serve_writes_its_log_file(served, instance_path):
    urllib.request.urlopen(served.url + "/healthz", timeout=5).read()
    served.stop()
    log = (instance_path / "kiosk.log").read_text(encoding="utf-8")
    assert "Serving on" in log


def test_the_systemd_units_restart_the_server_and_run_real_commands(instance_path):
    units = {p.name: p.read_text(encoding="utf-8") for p in (PROJECT_ROOT / "deploy").glob("centre-kiosk*")}
    assert "Restart=always" in units["centre-kiosk.service"] and "kiosk serve" in units["centre-kiosk.service"]
    assert "OnCalendar=" in units["centre-kiosk-backup.timer"] and "Persistent=true" in units["centre-kiosk-backup.timer"]
    commands = {
        line.split("/bin/kiosk ", 1)[1].split(" --")[0]
        for text in units.values()
        for line in text.splitlines()
        if line.startswith("Exec") and "/bin/kiosk " in line
    }
    assert {"serve", "db upgrade", "backup", "privacy purge", "sync"} <= commands
    for command in commands:
        result = invoke(instance_path, *command.split(), "--help")
        assert result.exit_code == 0, (command, result.output)
