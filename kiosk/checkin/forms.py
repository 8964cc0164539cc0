from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from kiosk.checkin.models import ActivityCategory, CheckinMethod, CheckinPolicy, CheckinStatus
from kiosk.i18n import _l

CATEGORY_LABELS = {
    ActivityCategory.AFTER_SCHOOL: _l("After-school class"),
    ActivityCategory.CULTURE: _l("Culture and sport"),
    ActivityCategory.LECTURE: _l("Lecture"),
    ActivityCategory.VOLUNTEER: _l("Volunteering"),
    ActivityCategory.CHILDREN: _l("Children's club"),
    ActivityCategory.COMMUNITY: _l("Community event"),
    ActivityCategory.OTHER: _l("Other"),
}
POLICY_LABELS = {
    CheckinPolicy.ONCE: _l("Once per person"),
    CheckinPolicy.DAILY: _l("Once per person per session"),
    CheckinPolicy.REPEATABLE: _l("Every visit counts"),
}

METHOD_LABELS = {
    CheckinMethod.POSTER: _l("Poster QR"),
    CheckinMethod.ROTATING: _l("Rotating QR"),
    CheckinMethod.KIOSK_CARD: _l("Member card at the kiosk"),
    CheckinMethod.KIOSK_PHONE: _l("Phone number at the kiosk"),
    CheckinMethod.STAFF: _l("By staff"),
}
CHECKIN_STATUS_LABELS = {CheckinStatus.ACTIVE: _l("Counted"), CheckinStatus.UNDONE: _l("Undone")}


class ActivityForm(FlaskForm):
    title = StringField(_l("Title"))
    # A required choice: no category is picked for the staff member (the first one used to be).
    category = SelectField(
        _l("Category"),
        choices=[SelectChoice("", _l("Please choose…"))] + [SelectChoice(c.value, label) for c, label in CATEGORY_LABELS.items()],
        default="",
    )
    description = TextAreaField(_l("Description"))
    place = StringField(_l("Place"))
    starts_at = StringField(_l("Starts"), render_kw={"type": "datetime-local"})
    ends_at = StringField(_l("Ends"), render_kw={"type": "datetime-local"})
    weekly = BooleanField(_l("Every week"))
    repeat_until = StringField(_l("Last date (weekly)"), render_kw={"type": "date"})
    capacity = StringField(_l("Capacity per session (empty: no limit)"), render_kw={"inputmode": "numeric"})
    points = StringField(_l("Points for taking part"), render_kw={"inputmode": "numeric"})
    policy = SelectField(_l("Check-in rule"), choices=[SelectChoice(p.value, label) for p, label in POLICY_LABELS.items()])
    opens_minutes_before = StringField(_l("Check-in opens (minutes before)"), default="30", render_kw={"inputmode": "numeric"})
    closes_minutes_after = StringField(_l("Check-in closes (minutes after)"), default="30", render_kw={"inputmode": "numeric"})


class ManualCheckinForm(FlaskForm):
    person = StringField(_l("Mobile number or member number"), render_kw={"inputmode": "numeric", "autocomplete": "off"})
    reason = StringField(_l("Reason"))


class ReasonForm(FlaskForm):
    reason = StringField(_l("Reason"))
