"""The staff area: login, roles, staff accounts, the audit log, the dashboard."""

from __future__ import annotations

from kiosk.features import DashboardCard, Feature, MenuLink
from kiosk.i18n import _l


def feature() -> Feature:
    from kiosk.staff import demo, views

    admin_links = (MenuLink("staff.users", _l("Staff accounts"), role="admin"), MenuLink("staff.audit", _l("Audit log"), role="admin"))
    return Feature(
        name="staff",
        blueprints=(views.bp,),
        menu=admin_links,
        dashboard=DashboardCard(_l("Administration"), links=admin_links, role="admin"),
        demo=demo.load,
        setup=_setup,
    )


def _setup(app) -> None:
    from kiosk.features import registry

    # The staff layout renders the menu the features registered (filtered by role there).
    app.jinja_env.globals["staff_menu"] = lambda: registry(app).menu
