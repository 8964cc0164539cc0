from __future__ import annotations

from flask import Blueprint

from kiosk.staff.access import staff_blueprint

bp = Blueprint("catalogue", __name__)
staff_bp = staff_blueprint("catalogue_staff", __name__, "/staff/catalogue")


def setup(app) -> None:
    from kiosk.catalogue.cli import catalogue_cli

    app.cli.add_command(catalogue_cli)
