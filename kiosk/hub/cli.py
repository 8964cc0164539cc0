"""`kiosk hub …`: the district's commands on the hub (KIOSK_ROLE=hub)."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import click
from flask import Blueprint, current_app

from kiosk.db import write_transaction

bp = Blueprint("hub_cli", __name__, cli_group="hub")


def write_hub_secrets(instance_path: Path) -> list[str]:
    """Add the hub's secrets to instance/kiosk.toml when missing (never changes one)."""
    import tomllib

    from kiosk.cli import write_instance_config
    from kiosk.config import CONFIG_FILE_NAME
    from kiosk.sync.protocol import new_box_keypair

    write_instance_config(instance_path)
    config_file = instance_path / CONFIG_FILE_NAME
    present = tomllib.loads(config_file.read_text(encoding="utf-8"))
    added = []
    with config_file.open("a", encoding="utf-8") as fh:
        if "ROLE" not in present:
            fh.write('ROLE = "hub"\n')
        if "HUB_BOX_KEY" not in present:
            fh.write(f'HUB_BOX_KEY = "{new_box_keypair()[0]}"\n')
            added.append("HUB_BOX_KEY")
        if "HUB_PSEUDONYM_KEY" not in present:
            fh.write(f'HUB_PSEUDONYM_KEY = "{secrets.token_urlsafe(48)}"\n')
            added.append("HUB_PSEUDONYM_KEY")
    return added


@bp.cli.command("init")
def init_command() -> None:
    """Write the hub's secrets (box key, pseudonym key) and migrate the database."""
    from flask_migrate import upgrade

    added = write_hub_secrets(Path(current_app.instance_path))
    upgrade()
    click.echo(f"Hub ready ({', '.join(added) or 'secrets kept'}). Restart to load new secrets.")


@bp.cli.command("demo")
def demo_command() -> None:
    """Xihu's centres, a district login (district / district-demo-1) and a sub-district login
    for 翠苑 (cuiyuan / cuiyuan-demo-1), one district notice and activity."""
    from kiosk.extensions import db
    from kiosk.hub import demo

    with write_transaction(db.session):
        summary = demo.load(db.session)
    click.echo(f"Hub demo: {summary}")
    click.echo("District login: district / district-demo-1; sub-district (翠苑): cuiyuan / cuiyuan-demo-1")


@bp.cli.command("rollup")
def rollup_command() -> None:
    """Apply every queued push to the dashboard's roll-ups now (they are otherwise applied just
    after each push and before every dashboard read): after a restore or an outage."""
    from kiosk.extensions import db
    from kiosk.hub import rollup

    done = rollup.catch_up(db.session)
    filed = rollup.catch_up_people_days(db.session)
    left = rollup.pending(db.session)
    db.session.rollback()  # end the read
    click.echo(f"{done.batches} batch(es), {done.events} event(s) rolled up; {left.batches} batch(es) pending; {filed} person-day(s) filed")


@bp.cli.command("rebuild-people-days")
def rebuild_people_days_command() -> None:
    """File every person-day again under today's tree, after a centre moved to another branch
    or changed level (until then the dashboard counts such totals the slow exact way)."""
    from kiosk.db import write_transaction
    from kiosk.extensions import db
    from kiosk.hub import people_days

    with write_transaction(db.session):
        filed = people_days.rebuild(db.session)
    click.echo(f"{filed} person-day(s) filed again")


@bp.cli.command("enrolment")
@click.argument("centre_code")
def enrolment_command(centre_code: str) -> None:
    """Create a one-time enrolment code for a centre (valid 7 days)."""
    from kiosk.extensions import db
    from kiosk.hub.services import HubError, create_enrolment

    try:
        code = create_enrolment(db.session, centre_code, created_by="cli")
    except HubError as error:
        raise click.ClickException(str(error.message)) from None
    click.echo(code)


@bp.cli.command("revoke")
@click.argument("centre_code")
def revoke_command(centre_code: str) -> None:
    """Revoke every key of a centre (its kiosk must enrol again with a new code)."""
    from kiosk.extensions import db
    from kiosk.hub.services import HubError, revoke_keys

    try:
        count = revoke_keys(db.session, centre_code)
    except HubError as error:
        raise click.ClickException(str(error.message)) from None
    click.echo(f"{count} key(s) revoked")


@bp.cli.command("user")
@click.argument("username")
@click.option("--role", type=click.Choice(["district", "subdistrict"]), default="district", show_default=True)
@click.option("--centre", "centre_code", default="", help="The branch a sub-district admin sees (its centre code).")
@click.password_option()
def user_command(username: str, role: str, centre_code: str, password: str) -> None:
    """Add a district staff login for the dashboard."""
    from kiosk.extensions import db
    from kiosk.hub.dashboard import create_user
    from kiosk.hub.services import HubError

    try:
        with write_transaction(db.session):
            create_user(db.session, username, password, role, centre_code or None)
    except HubError as error:
        raise click.ClickException(str(error.message)) from None
    click.echo(f"user {username} added")


@bp.cli.command("publish")
@click.argument("kind", type=click.Choice(["activity", "notice", "reward"]))
@click.argument("key")
@click.option("--data", "data_file", type=click.File("r", encoding="utf-8"), help="JSON file ('-' for stdin).")
@click.option("--delete", is_flag=True)
def publish_command(kind: str, key: str, data_file, delete: bool) -> None:
    """Publish (or delete) a district activity, notice or reward list for every centre."""
    from kiosk.extensions import db
    from kiosk.hub.services import HubError, publish

    data = json.load(data_file) if data_file else None
    if data is None and not delete:
        click.echo("--data or --delete is required", err=True)
        sys.exit(2)
    try:
        with write_transaction(db.session):
            publication = publish(db.session, kind, key, data, deleted=delete)
    except HubError as error:
        raise click.ClickException(str(error.message)) from None
    click.echo(f"revision {publication.revision}")
