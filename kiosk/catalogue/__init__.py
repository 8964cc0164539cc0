"""Reading hall: not built yet. Until it lands the feature shows its home tile as 即将开放."""

from __future__ import annotations

from kiosk.features import Feature, HomeTile
from kiosk.i18n import _l


def feature() -> Feature:
    from kiosk.catalogue import views

    return Feature(
        name="catalogue",
        blueprints=(views.bp,),
        tile=HomeTile("catalogue.index", _l("Reading hall"), _l("Find a book and where it stands"), "blue", ready=False),
    )
