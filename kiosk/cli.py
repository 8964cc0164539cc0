"""The `kiosk` command: init, demo, serve, staff add, db upgrade, backup/restore/doctor, privacy (and Flask's own commands)."""

from __future__ import annotations

import gc
import secrets
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_babel import gettext as _

from kiosk import create_app
from kiosk.config import CONFIG_FILE_NAME, DEFAULTS


def _create_app(*_args, **_kwargs):
    from kiosk.config import ConfigError

    try:
        return create_app()
    except ConfigError as error:
        click.echo(f"kiosk: {error}", err=True)
        sys.exit(2)


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True, add_version_option=False)
def main() -> None:
    """Centre Kiosk (党群服务中心 touchscreen kiosk)."""


# Secrets `kiosk init` generates; an older config missing one gets it appended.
GENERATED_SECRETS = ("SECRET_KEY", "SIGNING_KEY", "DISTRICT_KEY")


def write_instance_config(instance_path: Path) -> bool:
    """Write instance/kiosk.toml with fresh secrets, or add the secrets an older file lacks.
    Never changes a value that is there. True if anything was written."""
    import tomllib

    instance_path.mkdir(parents=True, exist_ok=True)
    config_file = instance_path / CONFIG_FILE_NAME
    if not config_file.exists():
        config_file.write_text(
            "# Centre Kiosk instance configuration (written by `kiosk init`; keep it private).\n"
            "# Any key here can also be set as an environment variable with the KIOSK_ prefix.\n"
            f'CENTRE_CODE = "{DEFAULTS["CENTRE_CODE"]}"\n'
            f'CENTRE_NAME = "{DEFAULTS["CENTRE_NAME"]}"\n',
            encoding="utf-8",
        )
        config_file.chmod(0o600)
    present = tomllib.loads(config_file.read_text(encoding="utf-8"))
    missing = [key for key in GENERATED_SECRETS if key not in present]
    with config_file.open("a", encoding="utf-8") as fh:
        for key in missing:
            fh.write(f'{key} = "{secrets.token_urlsafe(48)}"\n')
    return bool(missing)


def _database_has_data() -> bool:
    """Members or activities exist: their printed cards and posters carry the old signing key."""
    from sqlalchemy import inspect, text

    from kiosk.extensions import db

    tables = set(inspect(db.engine).get_table_names())
    return any(table in tables and db.session.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first() for table in ("member", "activity"))


@main.command("init")
@click.option("--force", is_flag=True, help="Write new secrets even though the database has members or activities.")
@with_appcontext
def init_command(force: bool) -> None:
    """Create instance/ config with random secrets and bring the database to the latest migration."""
    import tomllib

    from flask_migrate import upgrade

    instance_path = Path(current_app.instance_path)
    instance_path.mkdir(parents=True, exist_ok=True)  # a new folder (KIOSK_INSTANCE_PATH): SQLite cannot create one
    config_file = instance_path / CONFIG_FILE_NAME
    present = tomllib.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
    new_secrets = [key for key in GENERATED_SECRETS if key not in present and not current_app.config.get(key)]
    if new_secrets and _database_has_data():
        if not force:
            click.echo(
                _(
                    "Refusing to create new secrets (%(keys)s): the database already has members or activities, and every printed "
                    "card and poster was signed with the old key. Restore instance/kiosk.toml from its backup, or run `kiosk init --force`.",
                    keys=", ".join(new_secrets),
                ),
                err=True,
            )
            sys.exit(2)
        click.echo(_("Warning: new secrets written; every member card and poster must be printed again."), err=True)
    written = write_instance_config(instance_path)
    upgrade()
    click.echo(_("Instance ready at %(path)s (config %(state)s).", path=instance_path, state=_("written") if written else _("kept")))


@main.command("demo")
@with_appcontext
def demo_command() -> None:
    """Load demo data from real centres of Xihu District (idempotent)."""
    from kiosk.demo import load_demo
    from kiosk.extensions import db
    from kiosk.features import registry
    from kiosk.members.demo import DEMO_MEMBERS
    from kiosk.staff.demo import DEMO_ACCOUNTS

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # Each loader commits its rows through write_transaction, as the services do.
    summary = load_demo(db.session, ZoneInfo(app.config["TIMEZONE"]), registry(app).demo_loaders)
    summary.setdefault("accounts", 0)
    click.echo(_("Demo data loaded: %(centres)d centres, %(notices)d notices, %(accounts)d new staff accounts.", **summary))
    for username, password, _role in DEMO_ACCOUNTS:
        click.echo(_("Demo staff login: %(username)s / %(password)s", username=username, password=password))
    for name, phone, *_rest in DEMO_MEMBERS:
        click.echo(_("Demo member: %(name)s, mobile %(phone)s", name=name, phone=phone))
    click.echo(_("Try first: tap Activity check-in, pick an open activity and type a demo member's mobile number on the keypad."))


@main.command("serve")
@click.option("--host", default=None, help="Address to listen on (default from config: 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default 8000).")
@click.option("--threads", default=None, type=int, help="Worker threads (default 8).")
@with_appcontext
def serve_command(host: str | None, port: int | None, threads: int | None) -> None:
    """Serve the kiosk with waitress."""
    from kiosk.serving import create_server

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    from kiosk.security import configuration_problems

    missing = configuration_problems(app.config)
    if missing:
        click.echo(
            _("Missing configuration: %(keys)s. Run `kiosk init` first (or restore instance/kiosk.toml from its backup).", keys=", ".join(missing)), err=True
        )
        sys.exit(2)
    from kiosk.ops.backup import hold_serve_lock
    from kiosk.ops.logs import install_file_logging

    hold_serve_lock(Path(app.instance_path))  # `kiosk restore` refuses while this is held
    install_file_logging(app.config, Path(app.instance_path))
    from kiosk.ops import allocator, memprobe

    memprobe.install(app)  # only with MEMORY_PROBE_DIR set (bench/soak.py --probe)
    allocator.tune(app.config)  # before waitress starts its threads (their arenas)
    host = host or app.config["SERVE_HOST"]
    port = port or app.config["SERVE_PORT"]
    import logging

    logging.basicConfig()  # as waitress.serve does: records reach standard error (the journal)
    try:
        # waitress with the kiosk's connection settings and channel (kiosk.serving: its socket
        # loop does not spin while a worker writes a response).
        server = create_server(app, host=host, port=port, threads=threads or app.config["SERVE_THREADS"], config=app.config)
    except OSError as error:  # the port taken (another kiosk serve, a second `make run`), or not ours to bind
        click.echo(
            _(
                "Cannot listen on %(host)s:%(port)d (%(reason)s). Is the kiosk already running? Stop it, or choose another port: "
                "`kiosk serve --port 8001` (`make run PORT=8001`).",
                host=host,
                port=port,
                reason=error.strerror or error,
            ),
            err=True,
        )
        sys.exit(2)
    # Said only once it listens: the address printed is one that answers.
    click.echo(_("Centre Kiosk is running at http://%(host)s:%(port)d/ (staff: /staff/)", host=host, port=port))
    from kiosk.ops.watchdog import serve_notified

    # What start-up built (modules, the app, compiled templates and statements) lives as long as
    # the process: frozen out of the collector, a full collection under load walks only what
    # requests made since (docs/benchmarks.md "Booking, part 8b": 265–300 ms stalls before).
    gc.collect()
    gc.freeze()
    server.print_listen("Serving on http://{}:{}")
    serve_notified(server, host, port)  # READY=1 now that it listens; WATCHDOG=1 while /healthz answers


@main.group("staff")
def staff_group() -> None:
    """Staff accounts."""


@staff_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["staff", "admin"]), default="staff", show_default=True)
@click.option("--display-name", default="", help="Name shown on staff pages.")
@click.password_option(help="Prompted for (twice) when not given.")
@with_appcontext
def staff_add_command(username: str, role: str, display_name: str, password: str) -> None:
    """Add a staff account (the password is prompted for)."""
    from kiosk.extensions import db
    from kiosk.staff.services import StaffError, create_staff_user

    try:
        user = create_staff_user(db.session, username, password, role, display_name=display_name)  # commits (write_transaction)
    except StaffError as error:
        raise click.ClickException(str(error.message)) from None
    click.echo(_("Staff account %(name)s created.", name=user.username))


@staff_group.command("password")
@click.argument("username")
@click.password_option(help="Prompted for (twice) when not given.")
@with_appcontext
def staff_password_command(username: str, password: str) -> None:
    """Set a new password for a staff account (a forgotten password); its sessions end."""
    from sqlalchemy import select

    from kiosk.extensions import db
    from kiosk.staff.models import StaffUser
    from kiosk.staff.services import StaffError, normalise_username
    from kiosk.staff.sessions import change_password

    user = db.session.scalar(select(StaffUser).where(StaffUser.username == normalise_username(username)))
    if user is None:
        raise click.ClickException(_("There is no staff account %(name)s.", name=username))
    try:
        change_password(db.session, user, password, actor=None)  # commits (write_transaction)
    except StaffError as error:
        raise click.ClickException(str(error.message)) from None
    click.echo(_("A new password has been set for %(name)s; their sessions have been logged out.", name=user.username))


from kiosk.devices.cli import device_group  # noqa: E402
from kiosk.ops.cli import backup_command, doctor_command, restore_command  # noqa: E402
from kiosk.privacy_rights.cli import privacy_group  # noqa: E402

main.add_command(device_group)
for command in (backup_command, restore_command, doctor_command, privacy_group):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
