"""`kiosk backup`, `kiosk restore`, `kiosk doctor` (logic in backup.py and doctor.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _

from kiosk.errors import KioskError


def _paths() -> tuple[Path, Path]:
    from kiosk.ops.backup import database_path

    return database_path(current_app.config["SQLALCHEMY_DATABASE_URI"]), Path(current_app.instance_path)


@click.command("backup")
@click.option(
    "--dest", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder (a USB stick too); default BACKUP_DIR or instance/backups."
)
@click.option("--keep", type=int, default=None, help="How many dated backups to keep in the folder (default BACKUP_KEEP).")
@with_appcontext
def backup_command(dest: Path | None, keep: int | None) -> None:
    """Back up the database (while the kiosk serves) and instance/kiosk.toml."""
    from kiosk.ops import backup

    config = current_app.config
    try:
        database, instance = _paths()
        result = backup.backup(
            database,
            instance,
            dest or backup.default_directory(config, instance),
            centre=config["CENTRE_CODE"],
            zone=ZoneInfo(config["TIMEZONE"]),
            keep=keep if keep is not None else int(config["BACKUP_KEEP"]),
        )
    except KioskError as error:
        raise click.ClickException(str(error.message)) from None
    click.echo(_("Backup written: %(path)s (%(size)d KB).", path=result.database, size=result.size // 1024))
    if result.config is not None:
        click.echo(_("Config copied: %(path)s (it holds the secrets: keep the backup safe).", path=result.config))
    for path in result.removed:
        click.echo(_("Old backup removed: %(path)s", path=path))


@click.command("restore")
@click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Restore even though the database in use has newer records.")
@with_appcontext
def restore_command(backup_file: Path, force: bool) -> None:
    """Put a backup in place of the database (the kiosk server must be stopped)."""
    from flask_migrate import upgrade

    from kiosk.extensions import db
    from kiosk.ops import backup

    config = current_app.config
    try:
        database, instance = _paths()
        db.session.remove()
        db.engine.dispose()  # no pooled connection may outlive the old file's content
        result = backup.restore(
            backup_file,
            database,
            instance,
            backup.default_directory(config, instance),
            centre=config["CENTRE_CODE"],
            zone=ZoneInfo(config["TIMEZONE"]),
            force=force,
        )
    except KioskError as error:
        raise click.ClickException(str(error.message)) from None
    if result.safety_copy is not None:
        click.echo(_("The database it replaced was kept: %(path)s", path=result.safety_copy))
    upgrade()  # a backup from older software is brought to this version's schema
    click.echo(_("Restored %(path)s.", path=backup_file))
    if result.config_restored:
        click.echo(_("instance/kiosk.toml was restored from the backup as well."))
    click.echo(_("Start the kiosk again: sudo systemctl start centre-kiosk"))


@click.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """Check that this kiosk can run unattended; says what to fix. Exit code 1 on a problem."""
    from kiosk.db import utcnow
    from kiosk.extensions import db
    from kiosk.ops.doctor import Context, run_checks

    checks = run_checks(Context(current_app.config, Path(current_app.instance_path), db.session, utcnow()))
    for check in checks:
        click.echo(f"{check.symbol} {check.title}: {check.detail}")
        if check.failed and check.fix:
            click.echo("    " + _("To fix: %(fix)s", fix=check.fix))
    failed = [c for c in checks if c.failed]
    if failed:
        click.echo(_("%(n)d problem(s) found.", n=len(failed)))
        sys.exit(1)
    click.echo(_("All checks passed."))
