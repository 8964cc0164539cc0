from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from kiosk.i18n import _l
from kiosk.staff.models import StaffRole


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=40)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class NewStaffForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=40)])
    display_name = StringField(_l("Display name"), validators=[Length(max=60)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    role = SelectField(_l("Role"), choices=[SelectChoice(StaffRole.STAFF.value, _l("Staff")), SelectChoice(StaffRole.ADMIN.value, _l("Administrator"))])


class ConfirmForm(FlaskForm):
    """A bare form for POST buttons: carries the CSRF token."""


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=200)], render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)], render_kw={"autocomplete": "new-password"})
    confirm_password = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )


class PasswordResetForm(FlaskForm):
    """An administrator setting a new password for another account."""

    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)], render_kw={"autocomplete": "new-password"})
    confirm_password = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )
