"""Staff page to enrol this browser as a kiosk and to revoke devices; the one-time enrol link."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField

from kiosk.devices import services
from kiosk.devices.access import current_device, set_device_cookie
from kiosk.extensions import db, limiter
from kiosk.i18n import _l
from kiosk.staff.access import client_address, staff_blueprint
from kiosk.staff.forms import ConfirmForm
from kiosk.web import render

staff_bp = staff_blueprint("devices", __name__, "/staff/devices")
enrol_bp = Blueprint("device_enrol", __name__)

STATE_LABELS = {"enrolled": _l("Enrolled"), "pending": _l("Waiting for its link"), "revoked": _l("Revoked")}


class EnrolForm(FlaskForm):
    name = StringField(_l("Name of this kiosk"))


def _page(form: EnrolForm, status: int = 200):
    return render(
        "devices/staff_devices.html",
        status=status,
        form=form,
        confirm_form=ConfirmForm(),
        devices=services.list_devices(db.session),
        this_device=current_device(),
        state_labels=STATE_LABELS,
    )


@staff_bp.get("/")
def devices():
    return _page(EnrolForm(formdata=None))


@staff_bp.post("/enrol")
def enrol():
    form = EnrolForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        device, secret = services.enrol_device(db.session, form.name.data, actor=current_user, remote_addr=client_address())
    except services.DeviceError as error:
        form.name.errors.append(str(error.message))
        return _page(form, error.status)
    flash(_("This browser is now the kiosk “%(name)s”.", name=device.name), "success")
    return set_device_cookie(redirect(url_for("devices.devices")), secret)


@staff_bp.post("/<int:device_id>/revoke")
def revoke(device_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        device = services.revoke_device(db.session, device_id, actor=current_user, remote_addr=client_address())
    except services.DeviceError as error:
        abort(error.status)
    flash(_("Device “%(name)s” revoked: it can no longer use the kiosk pages.", name=device.name), "success")
    return redirect(url_for("devices.devices"))


@enrol_bp.get("/device/enrol/<code>")
@limiter.limit("10 per minute")
def enrol_with_code(code: str):
    try:
        _device, secret = services.redeem_enrol_code(db.session, code, remote_addr=client_address())
    except services.DeviceError as error:
        from kiosk.web import error_response

        return error_response(error.status, _("Not allowed"), str(error.message))
    return set_device_cookie(redirect(url_for("home.index")), secret)
