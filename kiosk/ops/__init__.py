"""Operations: the health check a monitor polls, the staff status page, backups, `kiosk doctor`,
log rotation; and the outbox event of a person's erasure (kiosk.privacy_rights)."""

from __future__ import annotations

from kiosk.features import Feature, MenuLink
from kiosk.i18n import _l


def _setup(app) -> None:
    from kiosk.db import utcnow

    # The server's start (the app is built once per process): uptime on the status page.
    app.extensions["kiosk.started_at"] = utcnow()


def feature() -> Feature:
    from kiosk.ops import views

    return Feature(
        name="ops",
        blueprints=(views.bp, views.staff_bp),
        menu=(MenuLink("ops_staff.status", _l("System status"), role="admin"),),
        # `kiosk privacy erase` tells the district to forget the person (kiosk.hub.services.forget_erased_people).
        event_types=("privacy.erased",),
        setup=_setup,
    )
