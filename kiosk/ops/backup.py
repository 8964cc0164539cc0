"""`kiosk backup` and `kiosk restore`: the live SQLite database through SQLite's online backup
API (a consistent copy while the server keeps serving: WAL readers never block the writer)
plus instance/kiosk.toml (the secrets that signed every printed card), dated, newest N kept.

A backup is two files with one stamp: ``kiosk-<centre>-<YYYYmmdd-HHMMSS>.sqlite3`` and
``….toml``. The copy is written as ``….part``, checked with ``PRAGMA integrity_check``, flushed
to the disk and only then renamed, so a backup that exists is whole (a USB stick pulled out
half-way leaves a ``.part``, never a broken backup with a good name).

Restore refuses while `kiosk serve` runs (it holds a shared lock on instance/serve.lock for its
life; restore needs it exclusively), refuses a backup that fails integrity_check, and refuses
to go back in time over a database with newer records unless forced. It keeps the database
and config it replaces as a ``-before-restore`` backup first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from kiosk.config import CONFIG_FILE_NAME
from kiosk.db import utcnow
from kiosk.errors import KioskError
from kiosk.i18n import _l

BACKUP_NAME = re.compile(r"^kiosk-(?P<centre>[A-Za-z0-9-]+?)-(?P<stamp>\d{8}-\d{6})(?P<tag>-[a-z-]+)?\.sqlite3$")
MARKER_FILE = "last-backup.json"
SERVE_LOCK_FILE = "serve.lock"


class BackupError(KioskError):
    status = 409


@dataclass
class BackupResult:
    database: Path
    config: Path | None
    size: int
    removed: list[Path]
    at: datetime


def database_path(uri: str) -> Path:
    """The file of a ``sqlite:///…`` URL (backups are for the kiosk's SQLite database)."""
    if not uri.startswith("sqlite:///"):
        raise BackupError("not_sqlite", _l("Backups are for a kiosk's SQLite database; back up the hub's PostgreSQL with pg_dump."))
    return Path(uri.removeprefix("sqlite:///"))


def default_directory(config: Any, instance_path: Path) -> Path:
    return Path(config.get("BACKUP_DIR") or instance_path / "backups")


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:  # some filesystems (vfat on a USB stick) refuse: the file's own fsync was done
        pass
    finally:
        os.close(descriptor)


def _private(path: Path) -> None:
    with contextlib.suppress(OSError):  # a USB stick's vfat has no permissions
        path.chmod(0o600)


def _complaint(error: Exception) -> str:
    """SQLite's message, readable. A damaged file can put bytes that are not UTF-8 into the
    message (an object name from a scribbled schema); Python's sqlite3 then raises
    UnicodeDecodeError instead of DatabaseError, and the bytes are still the complaint."""
    if isinstance(error, UnicodeDecodeError):
        return bytes(error.object).decode("utf-8", "replace")
    return str(error)


def integrity(path: Path, *, quick: bool = False) -> str:
    """``ok`` or SQLite's first complaint (read-only: the file is never changed)."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return _complaint(error)
    connection.text_factory = lambda raw: raw.decode("utf-8", "replace")
    try:
        rows = connection.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
    except (sqlite3.DatabaseError, UnicodeDecodeError) as error:
        return _complaint(error)
    finally:
        connection.close()
    return "ok" if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:3])


def _copy(source: Path, target: Path) -> None:
    """SQLite's online backup of ``source`` into a new file ``target``."""
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()
    with open(target, "rb") as fh:
        os.fsync(fh.fileno())


def list_backups(directory: Path) -> list[Path]:
    """Dated backups in the folder, oldest first (``-before-restore`` copies included)."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if BACKUP_NAME.match(p.name)), key=lambda p: (BACKUP_NAME.match(p.name)["stamp"], p.name))  # type: ignore[index]


def _config_of(backup: Path) -> Path:
    return backup.with_suffix(".toml")


def backup(
    database: Path, instance_path: Path, directory: Path, *, centre: str, zone: ZoneInfo, keep: int, tag: str = "", now: datetime | None = None
) -> BackupResult:
    """One dated backup of the database and the config; the oldest beyond ``keep`` go."""
    if keep < 1:
        raise BackupError("bad_keep", _l("Keep at least one backup."), status=400)
    if not database.exists():
        raise BackupError("no_database", _l("There is no database at %(path)s yet. Run `kiosk init` first.", path=database), status=404)
    now = now or utcnow()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BackupError("bad_destination", _l("Cannot write to %(path)s: %(error)s", path=directory, error=error.strerror or error), status=400) from None
    safe_centre = re.sub(r"[^A-Za-z0-9-]", "-", centre) or "kiosk"
    stamp = now.astimezone(zone).strftime("%Y%m%d-%H%M%S")
    target = directory / f"kiosk-{safe_centre}-{stamp}{tag}.sqlite3"
    if target.exists():
        raise BackupError("backup_exists", _l("A backup with this time already exists: %(path)s. Try again in a second.", path=target))
    part = target.with_name(target.name + ".part")
    try:
        _copy(database, part)
        problem = integrity(part)
        if problem != "ok":
            raise BackupError("backup_corrupt", _l("The copy failed its integrity check (%(problem)s); nothing was kept.", problem=problem))
        _private(part)
        part.replace(target)
    except OSError as error:
        part.unlink(missing_ok=True)
        raise BackupError(
            "backup_failed", _l("The backup could not be written to %(path)s: %(error)s", path=directory, error=error.strerror or error)
        ) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    config_source = instance_path / CONFIG_FILE_NAME
    config_copy = None
    if config_source.exists():
        config_copy = _config_of(target)
        shutil.copyfile(config_source, config_copy)
        _private(config_copy)
        with open(config_copy, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_directory(directory)
    removed: list[Path] = []
    if not tag:
        dated = [p for p in list_backups(directory) if not BACKUP_NAME.match(p.name)["tag"]]  # type: ignore[index]
        for old in dated[: max(0, len(dated) - keep)]:
            for path in (old, _config_of(old)):
                if path.exists():
                    path.unlink()
                    removed.append(path)
        result = BackupResult(target, config_copy, target.stat().st_size, removed, now)
        _write_marker(instance_path, result)
        return result
    return BackupResult(target, config_copy, target.stat().st_size, removed, now)


def _write_marker(instance_path: Path, result: BackupResult) -> None:
    marker = instance_path / MARKER_FILE
    data = {"at": result.at.isoformat(), "path": str(result.database), "bytes": result.size}
    temporary = marker.with_name(marker.name + ".tmp")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    temporary.replace(marker)


def last_backup(instance_path: Path) -> dict[str, Any] | None:
    """What the last `kiosk backup` wrote ({"at": datetime, "path", "bytes"}), or None."""
    try:
        data = json.loads((instance_path / MARKER_FILE).read_text(encoding="utf-8"))
        data["at"] = datetime.fromisoformat(data["at"])
        return data
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ---- the server's lock ----

_serve_lock: IO[str] | None = None


def hold_serve_lock(instance_path: Path) -> None:
    """`kiosk serve` holds a shared lock on instance/serve.lock for its whole life (several
    servers may share a database); `kiosk restore` needs it exclusively. The kernel drops the
    lock when the process ends, however it ends."""
    global _serve_lock
    if _serve_lock is not None:
        return
    instance_path.mkdir(parents=True, exist_ok=True)
    handle = open(instance_path / SERVE_LOCK_FILE, "a+")  # noqa: SIM115 - held open for the process's life
    fcntl.flock(handle, fcntl.LOCK_SH)
    _serve_lock = handle


def server_running(instance_path: Path) -> bool:
    path = instance_path / SERVE_LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


@contextmanager
def _exclusive(instance_path: Path) -> Iterator[None]:
    """No server may start while a restore runs (and none may be running)."""
    instance_path.mkdir(parents=True, exist_ok=True)
    with open(instance_path / SERVE_LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                "server_running",
                _l("The kiosk server is running. Stop it first (sudo systemctl stop centre-kiosk), restore, then start it again."),
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---- restore ----


def last_change(path: Path) -> str | None:
    """The time of the newest record (outbox events and audit entries: every write of the
    kiosk makes one or the other), as stored; None for an empty or foreign database."""
    if not path.exists():
        return None
    newest = None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        for sql in ("SELECT max(occurred_at) FROM outbox_event", "SELECT max(at) FROM audit_entry"):
            try:
                value = connection.execute(sql).fetchone()[0]
            except (sqlite3.DatabaseError, UnicodeDecodeError):  # see _complaint
                continue
            if value and (newest is None or str(value) > newest):
                newest = str(value)
    connection.close()
    return newest


@dataclass
class RestoreResult:
    safety_copy: Path | None
    config_restored: bool
    backup_time: str | None
    replaced_time: str | None


def restore(
    backup_file: Path, database: Path, instance_path: Path, safety_directory: Path, *, centre: str, zone: ZoneInfo, force: bool = False
) -> RestoreResult:
    """Put a backup in place of the live database (and its config beside it, if any)."""
    if not backup_file.is_file():
        raise BackupError("no_backup", _l("There is no backup file %(path)s.", path=backup_file), status=404)
    problem = integrity(backup_file)
    if problem != "ok":
        raise BackupError(
            "backup_corrupt", _l("The backup %(path)s failed its integrity check (%(problem)s); nothing was changed.", path=backup_file, problem=problem)
        )
    with sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True) as probe:
        is_kiosk = probe.execute("SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'").fetchone()[0] == 1
    probe.close()
    if not is_kiosk:
        raise BackupError("not_a_backup", _l("%(path)s is not a kiosk database.", path=backup_file), status=400)
    with _exclusive(instance_path):
        backup_time, live_time = last_change(backup_file), last_change(database)
        if live_time and (backup_time is None or live_time > backup_time) and not force:
            raise BackupError(
                "live_is_newer",
                _l(
                    "The database in use has newer records (%(live)s) than the backup (%(backup)s): restoring would lose them. "
                    "Use --force if that is what you want (a copy of the current database is kept).",
                    live=(live_time or "")[:19],
                    backup=(backup_time or "—")[:19],
                ),
            )
        safety = None
        if database.exists():
            safety = backup(database, instance_path, safety_directory, centre=centre, zone=zone, keep=1, tag="-before-restore").database
        database.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(database)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=WAL")
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                dst.close()
        finally:
            src.close()
        config_backup = _config_of(backup_file)
        restored_config = False
        if config_backup.exists():
            live_config = instance_path / CONFIG_FILE_NAME
            if live_config.exists() and live_config.read_bytes() != config_backup.read_bytes():
                shutil.copyfile(live_config, instance_path / (CONFIG_FILE_NAME + ".before-restore"))
                _private(instance_path / (CONFIG_FILE_NAME + ".before-restore"))
            shutil.copyfile(config_backup, live_config)
            _private(live_config)
            restored_config = True
    return RestoreResult(safety, restored_config, backup_time, live_time)
