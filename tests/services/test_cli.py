"""The `kiosk` command: one real subprocess run as an operator would (init), the rest through
Flask's CLI runner on a real instance folder and database."""

import sqlite3
from pathlib import Path

from kiosk import create_app
from kiosk.cli import main
from tests.helpers import run


def migration_head() -> str:
    from alembic.script import ScriptDirectory

    import kiosk

    return ScriptDirectory(str(Path(kiosk.__file__).parent / "migrations")).get_current_head()


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


def test_init_creates_an_instance_folder_that_does_not_exist_yet(tmp_path):
    """KIOSK_INSTANCE_PATH may name a new folder (a second kiosk instance, a USB disk): init
    makes it; SQLite, asked first whether the database had data, could not, and init died
    with a traceback."""
    instance = tmp_path / "new" / "instance"
    result = run(instance, "init")
    assert result.returncode == 0, result.stderr
    assert (instance / "kiosk.toml").exists() and (instance / "kiosk.sqlite3").exists()


def invoke(instance: Path, *args: str, input: str | None = None):
    """``kiosk ARGS`` through Flask's CLI runner, on an app built as the command would build it."""
    app = create_app({"INSTANCE_PATH": instance})
    result = app.test_cli_runner().invoke(main, list(args), input=input)
    return result


def test_demo_then_staff_add_then_upgrade(tmp_path):
    assert run(tmp_path, "init").returncode == 0
    demo = invoke(tmp_path, "demo")
    assert demo.exit_code == 0, demo.output
    assert "demo-admin" in demo.output and "13900000001" in demo.output
    assert invoke(tmp_path, "demo").exit_code == 0
    added = invoke(tmp_path, "staff", "add", "zhou.qing", "--role", "admin", input="a-long-password\na-long-password\n")
    assert added.exit_code == 0, added.output
    refused = invoke(tmp_path, "staff", "add", "zhou.qing", input="a-long-password\na-long-password\n")
    assert refused.exit_code != 0 and "该用户名已被使用" in refused.output
    assert invoke(tmp_path, "db", "upgrade").exit_code == 0
    with sqlite3.connect(tmp_path / "kiosk.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM centre").fetchone()[0] == 19
        assert db.execute("SELECT role FROM staff_user WHERE username = 'zhou.qing'").fetchone()[0] == "admin"
        assert db.execute("SELECT count(*) FROM audit_entry WHERE action = 'staff.create' AND actor_name = 'cli'").fetchone()[0] == 3


def test_serve_refuses_to_start_without_init(tmp_path):
    result = invoke(tmp_path, "serve", "--port", "1")
    assert result.exit_code == 2 and "kiosk init" in result.output


def test_serve_on_a_port_already_taken_says_so_in_chinese(tmp_path):
    """A second `make run` (or another program on 8000): a clear message naming the port and
    how to choose another, exit 2, and no "running at" line (it used to print the address,
    then a waitress traceback)."""
    import socket

    assert run(tmp_path, "init").returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(tmp_path, "serve", "--port", str(port))
    assert result.returncode == 2, result.stderr
    assert f"无法在 127.0.0.1:{port} 上监听" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr and "http://127.0.0.1" not in result.stdout
