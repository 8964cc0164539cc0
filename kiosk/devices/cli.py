"""`kiosk device enrol-url` and `kiosk device list`: enrol a kiosk without a staff login."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from flask_babel import gettext as _


@click.group("device")
def device_group() -> None:
    """Kiosk devices (only an enrolled browser can use the kiosk screens)."""


@device_group.command("enrol-url")
@click.option("--name", default="", help="Name shown on the staff page (default: 自助终端).")
@click.option("--base", default="", help="Address the kiosk browser opens (default PUBLIC_BASE_URL or http://127.0.0.1:8000).")
@with_appcontext
def enrol_url_command(name: str, base: str) -> None:
    """Print a one-time link (valid 10 minutes) that enrols the browser opening it as a kiosk."""
    from flask import current_app

    from kiosk.devices.services import ENROL_CODE_MINUTES, create_enrol_code
    from kiosk.extensions import db

    _device, code = create_enrol_code(db.session, name)
    base = base or current_app.config["PUBLIC_BASE_URL"] or f"http://127.0.0.1:{current_app.config['SERVE_PORT']}"
    click.echo(_("Open this link once on the kiosk's browser to register it (valid %(minutes)d minutes):", minutes=ENROL_CODE_MINUTES))
    click.echo(f"{base.rstrip('/')}/device/enrol/{code}")


@device_group.command("list")
@with_appcontext
def list_command() -> None:
    """List kiosk devices and their state."""
    from kiosk.devices.services import list_devices
    from kiosk.extensions import db

    for device in list_devices(db.session):
        click.echo(f"{device.id}\t{device.state}\t{device.name}")
