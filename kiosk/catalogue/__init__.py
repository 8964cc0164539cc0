"""Reading hall (阅览室): the catalogue, Chinese search, browsing, copies and desk loans."""

from __future__ import annotations

from kiosk.features import DashboardCard, Feature, HomeTile, MenuLink
from kiosk.i18n import _l


def feature() -> Feature:
    from kiosk.catalogue import dashboard, demo, scan, services, views
    from kiosk.sync.outbox import once_a_day

    return Feature(
        name="catalogue",
        blueprints=(views.bp, views.staff_bp),
        recognisers=(scan.BOOK,),
        menu=(MenuLink("catalogue_staff.books", _l("Catalogue")), MenuLink("catalogue_staff.loans", _l("Loans"))),
        dashboard=DashboardCard(
            _l("Reading hall"),
            links=(
                MenuLink("catalogue_staff.books", _l("Catalogue")),
                MenuLink("catalogue_staff.loans", _l("Loans and returns")),
                MenuLink("catalogue_staff.imports", _l("Import a catalogue")),
                MenuLink("catalogue_staff.shelves", _l("Curated shelves")),
            ),
            figures=dashboard.figures,
        ),
        tile=HomeTile("catalogue.index", _l("Reading hall"), _l("Find a book and where it stands"), "blue"),
        demo=demo.load,
        event_types=("catalogue.loan", "catalogue.return", "catalogue.daily"),
        setup=views.setup,
        before_sync=once_a_day("catalogue.daily", services.record_daily_counts),
    )
