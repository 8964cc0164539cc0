"""Staff forms for members. Fields are plain strings: the rules live in members.services,
which turns bad input into messages the form shows next to the field."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from kiosk.i18n import _l
from kiosk.members.models import AgeBand

AGE_BAND_LABELS = {
    AgeBand.CHILD: _l("Under 18"),
    AgeBand.YOUNG: _l("18–34"),
    AgeBand.MIDDLE: _l("35–59"),
    AgeBand.SIXTIES: _l("60–69"),
    AgeBand.SEVENTIES: _l("70–79"),
    AgeBand.EIGHTY_PLUS: _l("80 and over"),
}


class MemberForm(FlaskForm):
    name = StringField(_l("Name"))
    phone = StringField(_l("Mobile number"), render_kw={"inputmode": "numeric", "autocomplete": "off"})
    community = StringField(_l("Community or village"))
    age_band = SelectField(_l("Age band"), choices=[SelectChoice(band.value, label) for band, label in AGE_BAND_LABELS.items()])
    consent = BooleanField(_l("The member has read the privacy notice and agrees"))


class MemberEditForm(MemberForm):
    pass


class PointsCorrectionForm(FlaskForm):
    delta = StringField(_l("Points (+ to add, − to take away)"), render_kw={"inputmode": "numeric"})
    note = StringField(_l("Reason"))


class DeskRedeemForm(FlaskForm):
    reward_id = SelectField(_l("Reward"), choices=[])
    request_key = StringField()
