from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, StringField

from kiosk.i18n import _l
from kiosk.points.models import PointsReason, RedemptionStatus

# What staff and visitors read for the stored codes (never the codes themselves).
REASON_LABELS = {
    PointsReason.CHECKIN: _l("Activity check-in"),
    PointsReason.VOLUNTEER: _l("Volunteering"),
    PointsReason.REDEMPTION: _l("Reward redeemed"),
    PointsReason.REDEMPTION_CANCELLED: _l("Redemption cancelled"),
    PointsReason.CHECKIN_UNDONE: _l("Check-in undone"),
    PointsReason.CORRECTION: _l("Correction by staff"),
    PointsReason.BOOKING_SERVED: _l("Service received"),
}
REDEMPTION_STATUS_LABELS = {
    RedemptionStatus.PENDING: _l("Waiting at the desk"),
    RedemptionStatus.HANDED_OVER: _l("Handed over"),
    RedemptionStatus.CANCELLED: _l("Cancelled"),
}


class RewardForm(FlaskForm):
    name = StringField(_l("Reward name"))
    description = StringField(_l("Description"))
    cost = StringField(_l("Cost in points"), render_kw={"inputmode": "numeric"})
    stock = StringField(_l("Stock"), render_kw={"inputmode": "numeric"})
    active = BooleanField(_l("Offered"), default=True)
    picture = FileField(_l("Picture (JPEG or PNG, under 2 MB)"))


class CancelRedemptionForm(FlaskForm):
    note = StringField(_l("Reason"))
