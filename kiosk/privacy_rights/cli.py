"""`kiosk privacy export|erase|purge`: a person's rights, asked for at the desk (PIPL)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _

from kiosk.errors import KioskError


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


def export_directory(config, instance_path: str) -> Path:
    configured = config.get("PRIVACY_EXPORT_DIR") or ""
    return Path(configured) if configured else Path(instance_path) / "privacy-exports"


@click.group("privacy")
def privacy_group() -> None:
    """A person's data: export it, erase it; the retention period."""


@privacy_group.command("export")
@click.option("--phone", required=True, help="The person's mobile number.")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder for the files (default instance/privacy-exports).")
@with_appcontext
def export_command(phone: str, dest: Path | None) -> None:
    """Write everything held about a person as a readable page (HTML) and as JSON."""
    from kiosk.extensions import db
    from kiosk.privacy_rights import services

    try:
        data = services.export_person(db.session, phone, zone=_zone())
    except KioskError as error:
        raise click.ClickException(str(error.message)) from None
    directory = dest or export_directory(current_app.config, current_app.instance_path)
    html_path, json_path = services.write_export(data, directory, current_app.config["CENTRE_NAME"])
    click.echo(_("Personal data exported (give the person the page; it holds their full number and name):"))
    click.echo(str(html_path))
    click.echo(str(json_path))


@privacy_group.command("erase")
@click.option("--phone", required=True, help="The person's mobile number.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def erase_command(phone: str, yes: bool) -> None:
    """Erase a person's name and number; their records stay as anonymous statistics."""
    from kiosk.extensions import db
    from kiosk.privacy import mask_name, mask_phone
    from kiosk.privacy_rights import services

    try:
        person = services.find_person(db.session, phone)
    except KioskError as error:
        raise click.ClickException(str(error.message)) from None
    who = mask_phone(person.phone)
    if person.member is not None:
        who = _("%(name)s (%(phone)s, member %(number)s)", name=mask_name(person.member.name), phone=who, number=person.member.member_number)
    db.session.rollback()  # end the read (nothing written) before the prompt waits on a person
    if not yes:
        click.confirm(_("Erase %(who)s? Their name and number cannot be brought back.", who=who), abort=True)
    try:
        result = services.erase_person(db.session, phone, zone=_zone())
    except KioskError as error:
        raise click.ClickException(str(error.message)) from None
    counts = ", ".join(f"{key} {value}" for key, value in sorted(result.counts.items()))
    click.echo(_("Erased %(who)s. Records kept without the person: %(counts)s.", who=who, counts=counts))
    click.echo(_("The district hub forgets the person at the next sync."))


@privacy_group.command("purge")
@click.option("--days", type=int, default=None, help="Retention period in days (default PRIVACY_RETENTION_DAYS).")
@with_appcontext
def purge_command(days: int | None) -> None:
    """Unlink check-ins, bookings and loans older than the retention period from the person."""
    from kiosk.extensions import db
    from kiosk.privacy_rights import services

    days = days if days is not None else int(current_app.config["PRIVACY_RETENTION_DAYS"])
    try:
        result = services.purge_expired(db.session, days, zone=_zone())
    except KioskError as error:
        raise click.ClickException(str(error.message)) from None
    counts = ", ".join(f"{key} {value}" for key, value in sorted(result.counts.items()))
    click.echo(
        _(
            "Records before %(day)s no longer name a person: %(counts)s.",
            day=result.cutoff.astimezone(_zone()).date().isoformat(),
            counts=counts,
        )
    )
