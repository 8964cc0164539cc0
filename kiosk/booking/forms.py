"""Staff forms for services, schedules, dates and the desk; labels for stored codes."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from kiosk.booking.models import BookingChannel, BookingStatus, ProviderKind, ServiceCategory
from kiosk.i18n import _l

CATEGORY_LABELS = {
    ServiceCategory.HAIRCUT: _l("Haircut"),
    ServiceCategory.MENDING: _l("Mending"),
    ServiceCategory.LEGAL: _l("Legal advice"),
    ServiceCategory.TAX: _l("Tax and social insurance advice"),
    ServiceCategory.COUNSELLING: _l("Counselling"),
    ServiceCategory.PARENTING: _l("Parenting advice"),
    ServiceCategory.OTHER: _l("Other"),
}
STATUS_LABELS = {
    BookingStatus.BOOKED: _l("Waiting"),
    BookingStatus.CALLED: _l("Called"),
    BookingStatus.SERVED: _l("Served"),
    BookingStatus.NO_SHOW: _l("No-show"),
    BookingStatus.CANCELLED: _l("Cancelled"),
}
CHANNEL_LABELS = {
    BookingChannel.KIOSK: _l("Kiosk"),
    BookingChannel.STAFF: _l("By staff"),
    BookingChannel.WALK_IN: _l("Walk-in"),
    BookingChannel.WAITLIST: _l("From the waiting list"),
}
PROVIDER_KIND_LABELS = {ProviderKind.VOLUNTEER: _l("Volunteer"), ProviderKind.ORGANISATION: _l("Partner organisation")}
WEEKDAY_LABELS = [_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"), _l("Sunday")]


def _numeric(default: str = "") -> dict:
    return {"default": default, "render_kw": {"inputmode": "numeric"}}


class ServiceForm(FlaskForm):
    name = StringField(_l("Name"))
    prefix = StringField(_l("Ticket letter (A–Z)"))
    category = SelectField(_l("Category"), choices=[SelectChoice(c.value, label) for c, label in CATEGORY_LABELS.items()])
    icon = StringField(_l("Icon (an emoji)"))
    description = TextAreaField(_l("Description"))
    place = StringField(_l("Place"))
    duration_minutes = StringField(_l("Usual duration (minutes)"), **_numeric("20"))
    lead_minutes = StringField(_l("Book at least (minutes ahead)"), **_numeric("30"))
    horizon_days = StringField(_l("Book at most (days ahead)"), **_numeric("14"))
    per_person_limit = StringField(_l("Open bookings per person"), **_numeric("1"))
    cancel_minutes = StringField(_l("Cancel up to (minutes before)"), **_numeric("60"))
    noshow_limit = StringField(_l("No-shows that block kiosk booking"), **_numeric("3"))
    noshow_days = StringField(_l("…within (days)"), **_numeric("90"))
    block_days = StringField(_l("Block for (days)"), **_numeric("30"))
    points_on_serve = StringField(_l("Points for a member when served"), **_numeric("0"))
    active = BooleanField(_l("Open for booking"), default=True)


class TemplateForm(FlaskForm):
    weekday = SelectField(_l("Weekday"), choices=[SelectChoice(str(i), label) for i, label in enumerate(WEEKDAY_LABELS)])
    starts = StringField(_l("From"), default="09:00", render_kw={"type": "time"})
    ends = StringField(_l("Until"), default="11:30", render_kw={"type": "time"})
    slot_minutes = StringField(_l("Slot length (minutes)"), **_numeric("20"))
    capacity = StringField(_l("Places per slot"), **_numeric("1"))
    provider_id = SelectField(_l("Given by"), choices=[], validate_choice=False)
    valid_from = StringField(_l("From date (optional)"), render_kw={"type": "date"})
    valid_until = StringField(_l("Until date (optional)"), render_kw={"type": "date"})


class OverrideForm(FlaskForm):
    day = StringField(_l("Date"), render_kw={"type": "date"})
    closed = BooleanField(_l("Closed on this date"))
    starts = StringField(_l("From"), render_kw={"type": "time"})
    ends = StringField(_l("Until"), render_kw={"type": "time"})
    slot_minutes = StringField(_l("Slot length (minutes)"), render_kw={"inputmode": "numeric"})
    capacity = StringField(_l("Places per slot"), render_kw={"inputmode": "numeric"})
    note = StringField(_l("Note"))


class ProviderForm(FlaskForm):
    name = StringField(_l("Name"))
    kind = SelectField(_l("Kind"), choices=[SelectChoice(k.value, label) for k, label in PROVIDER_KIND_LABELS.items()])


class ClosureForm(FlaskForm):
    day = StringField(_l("Date"), render_kw={"type": "date"})
    reason = StringField(_l("Reason (e.g. National Day)"))


class WalkInForm(FlaskForm):
    service_id = SelectField(_l("Service"), choices=[], validate_choice=False)
    phone = StringField(_l("Mobile number (optional)"), render_kw={"inputmode": "numeric", "autocomplete": "off"})


class LiftBlockForm(FlaskForm):
    phone = StringField(_l("Mobile number"), render_kw={"inputmode": "numeric", "autocomplete": "off"})
    reason = StringField(_l("Reason"))
