from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, StringField

from kiosk.i18n import _l


class RewardForm(FlaskForm):
    name = StringField(_l("Name"))
    description = StringField(_l("Description"))
    cost = StringField(_l("Cost in points"), render_kw={"inputmode": "numeric"})
    stock = StringField(_l("Stock"), render_kw={"inputmode": "numeric"})
    active = BooleanField(_l("Offered"), default=True)
    picture = FileField(_l("Picture (JPEG or PNG, under 2 MB)"))


class CancelRedemptionForm(FlaskForm):
    note = StringField(_l("Reason"))
