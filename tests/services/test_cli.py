"""The `kiosk` command, run as an operator would (a real subprocess, a real instance folder)."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path


def migration_head() -> str:
    from alembic.script import ScriptDirectory

    import kiosk

    return ScriptDirectory(str(Path(kiosk.__file__).parent / "migrations")).get_current_head()


KIOSK = [sys.executable, "-c", "from kiosk.cli import main; main()"]


def run(instance: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")} | {"KIOSK_INSTANCE_PATH": str(instance)}
    return subprocess.run([*KIOSK, *args], env=env, input=input, capture_output=True, text=True, timeout=120, check=False)


def test_init_is_safe_to_run_twice_and_keeps_its_secrets(tmp_path):
    first = run(tmp_path, "init")
    assert first.returncode == 0, first.stderr
    config = (tmp_path / "kiosk.toml").read_text(encoding="utf-8")
    assert "SECRET_KEY" in config and "insecure" not in config
    assert (tmp_path / "kiosk.toml").stat().st_mode & 0o077 == 0
    second = run(tmp_path, "init")
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "kiosk.toml").read_text(encoding="utf-8") == config
    with sqlite3.connect(tmp_path / "kiosk.sqlite3") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == migration_head()


def test_demo_then_staff_add_then_upgrade(tmp_path):
    assert run(tmp_path, "init").returncode == 0
    demo = run(tmp_path, "demo")
    assert demo.returncode == 0, demo.stderr
    assert "demo-admin" in demo.stdout
    assert run(tmp_path, "demo").returncode == 0
    added = run(tmp_path, "staff", "add", "zhou.qing", "--role", "admin", input="a-long-password\na-long-password\n")
    assert added.returncode == 0, added.stderr
    refused = run(tmp_path, "staff", "add", "zhou.qing", input="a-long-password\na-long-password\n")
    assert refused.returncode != 0 and "该用户名已被使用" in refused.stderr
    assert run(tmp_path, "db", "upgrade").returncode == 0
    with sqlite3.connect(tmp_path / "kiosk.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM centre").fetchone()[0] == 19
        assert db.execute("SELECT role FROM staff_user WHERE username = 'zhou.qing'").fetchone()[0] == "admin"
        assert db.execute("SELECT count(*) FROM audit_entry WHERE action = 'staff.create' AND actor_name = 'cli'").fetchone()[0] == 3


def test_serve_refuses_to_start_without_init(tmp_path):
    result = run(tmp_path, "serve", "--port", "1")
    assert result.returncode == 2 and "kiosk init" in result.stderr
