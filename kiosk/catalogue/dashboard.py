"""The reading hall's figures on the staff dashboard: titles, copies, on loan, overdue."""

from __future__ import annotations

from kiosk.catalogue.services import figures as catalogue_figures
from kiosk.features import Figure, FigureContext
from kiosk.i18n import _l


def figures(session, context: FigureContext) -> list[Figure]:
    today = context.now.astimezone(context.zone).date()
    current = catalogue_figures(session, today)
    return [
        Figure(_l("Titles"), current.titles, "catalogue_staff.books"),
        Figure(_l("Copies"), current.copies, "catalogue_staff.books"),
        Figure(_l("On loan"), current.on_loan, "catalogue_staff.loans"),
        Figure(_l("Overdue"), current.overdue, "catalogue_staff.overdue"),
    ]
