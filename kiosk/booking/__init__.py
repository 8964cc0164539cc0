"""Book a service: not built yet. Until it lands the feature shows its home tile as 即将开放."""

from __future__ import annotations

from kiosk.features import Feature, HomeTile
from kiosk.i18n import _l


def feature() -> Feature:
    from kiosk.booking import views

    return Feature(
        name="booking",
        blueprints=(views.bp,),
        tile=HomeTile("booking.index", _l("Book a service"), _l("Haircut, mending, legal advice…"), "green", ready=False),
    )
