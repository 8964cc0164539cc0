"""Check-in pages: the kiosk's check-in screen, the phone page a QR opens, and staff pages."""

from __future__ import annotations

import base64
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user

from kiosk.checkin import services, settings
from kiosk.checkin.forms import CATEGORY_LABELS, CHECKIN_STATUS_LABELS, METHOD_LABELS, POLICY_LABELS, ActivityForm, ManualCheckinForm, ReasonForm
from kiosk.checkin.models import Activity, ActivityStatus, CheckinMethod
from kiosk.checkin.poster import poster_pdf
from kiosk.checkin.scan import ACTIVITY_SESSION_KEY
from kiosk.db import utcnow
from kiosk.devices.access import device_key, kiosk_blueprint, phone_key
from kiosk.errors import KioskError
from kiosk.extensions import db
from kiosk.home.views import after_visit_url
from kiosk.limits import Limit, fixed_window, remote_address
from kiosk.members.scan import member_signer
from kiosk.members.services import looks_like_card_number, resolve_card_number
from kiosk.privacy import mask_name, mask_phone
from kiosk.qr import labelled_png, labelled_svg, qr_png, qr_svg
from kiosk.security import pass_key, public_base_url
from kiosk.staff.access import client_address, is_admin, staff_blueprint
from kiosk.staff.forms import ConfirmForm
from kiosk.web import csv_download, download, natural_span, prebuilt, render, slot, submit_form, xlsx_download

bp = kiosk_blueprint("checkin", __name__)
phone_bp = Blueprint("phone", __name__, url_prefix="/c")
staff_bp = staff_blueprint("activities", __name__, "/staff/activities")


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


def _rules():
    return settings.rules(current_app.config)


def _live(activity: Activity) -> dict:
    """Checked-in count for the session open now (or the next one), against capacity."""
    now = utcnow()
    occurrence = services.next_occurrence(activity, now, _zone())
    count = services.checked_in_count(db.session, activity.id, occurrence.session_date if occurrence else None)
    return {"count": count, "capacity": activity.capacity}


def _when(activity: Activity) -> str:
    occurrence = services.next_occurrence(activity, utcnow(), _zone())
    start, end = (occurrence.starts_at, occurrence.ends_at) if occurrence else (activity.starts_at, activity.ends_at)
    return f"{format_datetime(start, 'yyyy-MM-dd HH:mm')}–{format_datetime(end, 'HH:mm')}"


def _visitor_when(activity: Activity) -> str:
    """The same session as _when, in natural words for visitors (今天 14:00–16:00, 全天, 跨夜)."""
    occurrence = services.next_occurrence(activity, utcnow(), _zone())
    start, end = (occurrence.starts_at, occurrence.ends_at) if occurrence else (activity.starts_at, activity.ends_at)
    return natural_span(start, end)


def _who(result: services.CheckinResult) -> str:
    return mask_name(result.member_name) if result.member_name else mask_phone(result.phone or "")


def _success_text(result: services.CheckinResult) -> str:
    who = _who(result)
    if result.points:
        return _("Checked in: %(name)s, %(title)s. +%(points)d points", name=who, title=result.activity_title, points=result.points)
    return _("Checked in: %(name)s, %(title)s.", name=who, title=result.activity_title)


# ---- the kiosk's check-in screen ----


@bp.get("/checkin")
def index():
    lock = services.current_lock(db.session, current_app.config["DEVICE_ID"])
    if lock is not None:
        return redirect(url_for("checkin.screen", activity_id=lock.activity_id))
    running = services.running_activities(db.session, utcnow(), _zone())
    return render("checkin/index.html", running=[(a, _live(a)) for a, _ in running], when=_visitor_when)


@bp.get("/checkin/<int:activity_id>")
def screen(activity_id: int):
    activity = db.session.get(Activity, activity_id) or abort(404)
    refusal = None
    try:
        services.current_occurrence(activity, utcnow(), _zone())
    except services.CheckinError as error:
        refusal = error
    if activity.status != ActivityStatus.ACTIVE:
        refusal = services.CheckinError("activity_cancelled", _("This activity has been cancelled."))
    # Remember the activity on screen: a member card scanned now checks in to it.
    session[ACTIVITY_SESSION_KEY] = activity.id
    return render("checkin/screen.html", activity=activity, when=_visitor_when(activity), refusal=refusal, **_live(activity))


@bp.get("/checkin/<int:activity_id>/count")
def count(activity_id: int):
    activity = db.session.get(Activity, activity_id) or abort(404)
    return render("checkin/_count.html", "checkin/_count_value.html", activity=activity, **_live(activity))


@bp.get("/checkin/<int:activity_id>/keypad")
def keypad(activity_id: int):
    activity = db.session.get(Activity, activity_id) or abort(404)
    return render("checkin/_keypad.html", "checkin/_keypad.html", activity=activity)


def _device_limit() -> str:
    return current_app.config["KIOSK_CHECKIN_RATE_LIMIT"]


def _number_limit() -> str:
    return current_app.config["NUMBER_CHECKIN_RATE_LIMIT"]


@bp.post("/checkin/<int:activity_id>/phone")
# Per device and per number typed, counting every request; in process (kiosk.limits), as the
# phone check-in: Flask-Limiter's memory storage starts a timer thread every few ms under a burst.
@fixed_window(Limit("kiosk-device", _device_limit, device_key), Limit("kiosk-number", _number_limit, phone_key))
def kiosk_phone(activity_id: int):
    activity = db.session.get(Activity, activity_id) or abort(404)
    typed = request.form.get("phone")
    try:
        # A mobile number (11 digits), or the card number printed under a member card's QR.
        who = {"member": resolve_card_number(db.session, typed, member_signer(current_app.config))} if looks_like_card_number(typed) else {"phone": typed}
        result = services.check_in(db.session, activity.id, rules=_rules(), method=CheckinMethod.KIOSK_PHONE, **who)
    except KioskError as error:
        # The digits stay on the keypad so the visitor can correct one of them.
        return render("checkin/_kiosk_result.html", "checkin/_kiosk_result.html", status=error.status, activity=activity, error=error, typed=typed)
    return render(
        "checkin/_kiosk_result.html",
        "checkin/_kiosk_result.html",
        activity=activity,
        message=_success_text(result),
        result=result,
        next_url=after_visit_url(),
        **_live(activity),
    )


# ---- the phone page a QR code opens ----


@phone_bp.get("/<token>")
def phone_page(token: str):
    config = current_app.config
    now = utcnow()
    try:
        scanned = services.read_checkin_token(token[:200], settings.code_signer(config), config["CENTRE_CODE"], now, int(config["ROTATING_QR_SECONDS"]))
        activity = services.get_activity(db.session, scanned.activity_id)
        if activity.status != ActivityStatus.ACTIVE:
            raise services.CheckinError("activity_cancelled", _("This activity has been cancelled."), status=409)
        services.current_occurrence(activity, now, _zone())
    except services.CheckinError as error:
        return render("checkin/phone_refused.html", status=error.status, error=error)
    issued = services.issue_pass(scanned, settings.pass_signer(config), config["CENTRE_CODE"], now)
    return render("checkin/phone.html", activity=activity, when=_visitor_when(activity), pass_token=issued)


def _phone_limit() -> str:
    return current_app.config["PHONE_CHECKIN_RATE_LIMIT"]


def _pass_limit() -> str:
    return current_app.config["PASS_CHECKIN_LIMIT"]


def _succeeded(response) -> bool:
    return response.status_code == 200


@phone_bp.post("/checkin")
# Per phone (address), counting every request; per pass, counting successful check-ins. In
# process (kiosk.limits), not Flask-Limiter: this is the hottest route of the kiosk.
@fixed_window(Limit("phone-checkin", _phone_limit, remote_address), Limit("phone-pass", _pass_limit, pass_key, deduct_when=_succeeded))
def phone_checkin():
    config = current_app.config
    raw_id = request.form.get("activity", "")
    activity_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 10 else 0
    try:
        # The pass names the activity: no need to load it before the check-in does.
        method = services.read_pass(
            request.form.get("pass"), settings.pass_signer(config), config["CENTRE_CODE"], activity_id, utcnow(), int(config["CHECKIN_PASS_MINUTES"])
        )
        result = services.check_in(db.session, activity_id, rules=_rules(), method=method, phone=request.form.get("phone"))
    except services.CheckinError as error:
        activity = db.session.get(Activity, activity_id) if activity_id else None
        if error.field == "phone" and activity is not None:
            # A typo: let the visitor correct it on the same page (the pass is still good).
            return render(
                "checkin/phone.html",
                status=error.status,
                activity=activity,
                when=_visitor_when(activity),
                pass_token=request.form.get("pass", ""),
                error=error,
                typed=(request.form.get("phone") or "")[:20],
            )
        return render("checkin/phone_refused.html", status=error.status, error=error)
    # Prebuilt (kiosk.web.prebuilt): the page differs per check-in only by the message and the
    # balance; whether there is a balance and a member name picks the variant. The message is
    # in pieces so the phone never breaks a name inside (张* / 华, 茶香品 / 红韵).
    message = _message_pieces(_success_text(result), _who(result), result.activity_title)
    return prebuilt(
        "checkin/phone_done.html",
        (result.balance is not None, bool(result.member_name)),
        {
            "message": slot(0),
            "who": slot(2),
            "between": slot(3),
            "name": slot(4),
            "after": slot(5),
            "balance": None if result.balance is None else slot(1),
            "member": bool(result.member_name),
        },
        {0: message[0], 1: str(result.balance), 2: message[1], 3: message[2], 4: message[3], 5: message[4]},
    )


def _message_pieces(text: str, who: str, title: str) -> tuple[str, str, str, str, str]:
    """The success text as (before, who, between, title, after), each name kept whole on the page
    with the punctuation right after it (no line starting with ，or 。). A piece not found in
    the text leaves the rest as it is."""
    before, found, rest = text.partition(who) if who else (text, "", "")
    if not found:
        before, rest = "", text
    between, name, after = rest.partition(title) if title else (rest, "", "")
    # Punctuation right after a name goes into its piece, so no line starts with it (the
    # nowrap of the masked name would allow 张*华 / ，); a space too, so the points' piece
    # does not break.
    lead = len(between) - len(between.lstrip(_PUNCTUATION)) if found else 0
    found, between = found + between[:lead], between[lead:]
    if not name:
        return before, found, between, "", ""
    cut = len(after) - len(after.lstrip(_PUNCTUATION + " "))
    return before, found, between, name + after[:cut], after[cut:]


_PUNCTUATION = "。.，,！!"


# ---- staff ----


def _public_url(path: str) -> str:
    return public_base_url() + path


def _qr_warning() -> dict:
    """For the staff pages that show or print a check-in QR (templates/checkin/_qr_warning.html)."""
    base = current_app.config["PUBLIC_BASE_URL"] or request.host_url
    return {"qr_warning": settings.qr_address_warning(current_app.config["PUBLIC_BASE_URL"], request.host_url), "qr_base": base.rstrip("/")}


def _poster_url(activity: Activity) -> str:
    token = services.poster_token(activity, settings.code_signer(current_app.config), current_app.config["CENTRE_CODE"])
    return _public_url(url_for("phone.phone_page", token=token))


def _save(activity: Activity | None, form: ActivityForm) -> Activity:
    return services.save_activity(
        db.session,
        activity,
        title=form.title.data,
        category=form.category.data,
        description=form.description.data,
        place=form.place.data,
        starts_at=form.starts_at.data,
        ends_at=form.ends_at.data,
        weekly=bool(form.weekly.data),
        repeat_until=form.repeat_until.data,
        capacity=form.capacity.data,
        points=form.points.data,
        policy=form.policy.data,
        opens_minutes_before=form.opens_minutes_before.data,
        closes_minutes_after=form.closes_minutes_after.data,
        zone=_zone(),
        actor=current_user,
        remote_addr=client_address(),
    )


def _activity_or_404(activity_id: int) -> Activity:
    return db.session.get(Activity, activity_id) or abort(404)


@staff_bp.get("/")
def activities():
    items = services.list_activities(db.session)
    return render("checkin/staff_list.html", activities=items, categories=CATEGORY_LABELS, when=_when)


@staff_bp.route("/new", methods=["GET", "POST"])
def new():
    form = ActivityForm()
    activity, status = submit_form(form, lambda: _save(None, form))
    if activity is not None:
        flash(_("Activity saved."), "success")
        return redirect(url_for("activities.detail", activity_id=activity.id))
    return render("checkin/staff_form.html", form=form, activity=None, status=status)


@staff_bp.route("/<int:activity_id>/edit", methods=["GET", "POST"])
def edit(activity_id: int):
    activity = _activity_or_404(activity_id)
    if request.method == "GET":
        zone = _zone()
        form = ActivityForm(
            obj=activity,
            category=activity.category.value,
            policy=activity.policy.value,
            starts_at=activity.starts_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
            ends_at=activity.ends_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
            repeat_until=activity.repeat_until.isoformat() if activity.repeat_until else "",
        )
    else:
        form = ActivityForm()
    saved, status = submit_form(form, lambda: _save(activity, form))
    if saved is not None:
        flash(_("Activity saved."), "success")
        return redirect(url_for("activities.detail", activity_id=activity.id))
    return render("checkin/staff_form.html", form=form, activity=activity, status=status)


def _detail(activity: Activity, *, manual_form=None, status: int = 200):
    lock = services.current_lock(db.session, current_app.config["DEVICE_ID"])
    return render(
        "checkin/staff_detail.html",
        status=status,
        activity=activity,
        when=_when(activity),
        category=CATEGORY_LABELS[activity.category],
        policy=POLICY_LABELS[activity.policy],
        checkins=services.attendance(db.session, activity.id, limit=200),
        manual_form=manual_form or ManualCheckinForm(formdata=None),
        reason_form=ReasonForm(formdata=None),
        confirm_form=ConfirmForm(),
        locked=lock is not None and lock.activity_id == activity.id,
        poster_url=_poster_url(activity),
        show_phone=is_admin(),
        method_labels=METHOD_LABELS,
        **_live(activity),
        **_qr_warning(),
    )


@staff_bp.get("/<int:activity_id>")
def detail(activity_id: int):
    return _detail(_activity_or_404(activity_id))


@staff_bp.post("/<int:activity_id>/status")
def set_status(activity_id: int):
    activity = _activity_or_404(activity_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        status = ActivityStatus(request.form.get("status", ""))
        services.set_activity_status(db.session, activity, status, actor=current_user, remote_addr=client_address())
    except ValueError:
        abort(400)
    except services.CheckinError as error:
        flash(str(error.message), "error")
    return redirect(url_for("activities.detail", activity_id=activity_id))


@staff_bp.post("/<int:activity_id>/checkin")
def manual_checkin(activity_id: int):
    activity = _activity_or_404(activity_id)
    form = ManualCheckinForm()
    result, status = submit_form(
        form,
        lambda: services.staff_check_in(
            db.session, activity.id, form.person.data, reason=form.reason.data or "", rules=_rules(), staff=current_user, remote_addr=client_address()
        ),
    )
    if result is None:
        return _detail(_activity_or_404(activity_id), manual_form=form, status=status)
    flash(_success_text(result), "success")
    return redirect(url_for("activities.detail", activity_id=activity_id))


@staff_bp.post("/checkins/<int:checkin_id>/undo")
def undo(checkin_id: int):
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        checkin = services.undo_checkin(db.session, checkin_id, staff=current_user, reason=form.reason.data, rules=_rules(), remote_addr=client_address())
    except services.CheckinError as error:
        flash(str(error.message), "error")
        # Back to the check-in's activity (never to the Referer header: an open redirect).
        activity_id = services.checkin_activity_id(db.session, checkin_id)
        return redirect(url_for("activities.detail", activity_id=activity_id) if activity_id else url_for("activities.activities"))
    flash(_("Check-in undone; its points were taken back."), "success")
    return redirect(url_for("activities.detail", activity_id=checkin.activity_id))


@staff_bp.post("/<int:activity_id>/lock")
def lock(activity_id: int):
    activity = _activity_or_404(activity_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if request.form.get("lock") == "1":
        services.lock_kiosk(db.session, current_app.config["DEVICE_ID"], activity, staff=current_user, remote_addr=client_address())
    else:
        services.unlock_kiosk(db.session, current_app.config["DEVICE_ID"], staff=current_user, remote_addr=client_address())
    return redirect(url_for("activities.detail", activity_id=activity_id))


# ---- QR codes: poster, downloads, rotating ----


@staff_bp.get("/<int:activity_id>/poster")
def poster(activity_id: int):
    activity = _activity_or_404(activity_id)
    return render("checkin/poster.html", activity=activity, when=_when(activity), poster_url=_poster_url(activity), **_qr_warning())


def _poster_download(activity: Activity, data: bytes, mimetype: str, extension: str):
    """Inline (shown in the page or a new tab) unless ?download=1; named after the activity."""
    name = f"{activity.title}-{_('Check-in QR code')}.{extension}"
    return download(data, name, mimetype, as_attachment=bool(request.args.get("download")))


def _poster_labels(activity: Activity) -> dict:
    """What the PDF poster says around the code: the activity, when and where, and the centre."""
    return {
        "heading": activity.title,
        "lines": (_when(activity), activity.place, _("Scan with your phone to check in")),
        "footer": current_app.config["CENTRE_NAME"],
    }


@staff_bp.get("/<int:activity_id>/poster.png")
def poster_png(activity_id: int):
    activity = _activity_or_404(activity_id)
    url = _poster_url(activity)
    data = labelled_png(url, **_poster_labels(activity)) if request.args.get("download") else qr_png(url)
    return _poster_download(activity, data, "image/png", "png")


@staff_bp.get("/<int:activity_id>/poster.svg")
def poster_svg(activity_id: int):
    activity = _activity_or_404(activity_id)
    url = _poster_url(activity)
    data = labelled_svg(url, **_poster_labels(activity)) if request.args.get("download") else qr_svg(url)
    return _poster_download(activity, data, "image/svg+xml", "svg")


@staff_bp.get("/<int:activity_id>/poster.pdf")
def poster_pdf_download(activity_id: int):
    activity = _activity_or_404(activity_id)
    pdf = poster_pdf(
        centre_name=current_app.config["CENTRE_NAME"],
        title=activity.title,
        when=_when(activity),
        place=activity.place,
        url=_poster_url(activity),
        call_to_action=_("Scan with your phone to check in"),
        footer=_("Check-in opens %(before)d minutes before the start.", before=activity.opens_minutes_before),
    )
    return _poster_download(activity, pdf, "application/pdf", "pdf")


def _rotating_qr(activity: Activity) -> dict:
    config = current_app.config
    step = services.rotation_step(utcnow(), int(config["ROTATING_QR_SECONDS"]))
    token = services.rotating_token(activity, settings.code_signer(config), config["CENTRE_CODE"], step)
    url = _public_url(url_for("phone.phone_page", token=token))
    return {"qr_data": base64.b64encode(qr_svg(url)).decode(), "refresh_seconds": int(config["ROTATING_QR_SECONDS"]) // 2 or 1}


@staff_bp.get("/<int:activity_id>/rotating")
def rotating(activity_id: int):
    activity = _activity_or_404(activity_id)
    return render("checkin/rotating.html", activity=activity, when=_when(activity), **_rotating_qr(activity), **_live(activity), **_qr_warning())


@staff_bp.get("/<int:activity_id>/rotating/qr")
def rotating_qr(activity_id: int):
    activity = _activity_or_404(activity_id)
    return render("checkin/_rotating_qr.html", "checkin/_rotating_qr.html", activity=activity, **_rotating_qr(activity))


# ---- attendance and statistics ----


def _attendance_rows(checkins: list, full_phones: bool) -> list[list]:
    rows = [[_("Time"), _("Session"), _("Name"), _("Mobile number"), _("How"), _("Points"), _("Status"), _("Reason")]]
    for c in checkins:
        phone = c.member.phone if c.member else c.phone or ""
        rows.append(
            [
                format_datetime(c.created_at, "yyyy-MM-dd HH:mm"),
                c.session_date.isoformat(),
                c.member.name if c.member else _("Guest"),
                phone if full_phones else mask_phone(phone),
                str(METHOD_LABELS[c.method]),
                c.points,
                str(CHECKIN_STATUS_LABELS[c.status]),
                c.reason,
            ]
        )
    return rows


def _attendance_export(activity_id: int, kind: str):
    activity = _activity_or_404(activity_id)
    full_phones = is_admin()
    checkins = services.export_attendance(db.session, activity.id, kind=kind, full_phones=full_phones, actor=current_user, remote_addr=client_address())
    rows = _attendance_rows(checkins, full_phones)
    name = f"{_('Attendance')}-{activity.title}.{kind}"
    return csv_download(rows, name) if kind == "csv" else xlsx_download(rows, name, "attendance")


@staff_bp.get("/<int:activity_id>/attendance.csv")
def attendance_csv(activity_id: int):
    return _attendance_export(activity_id, "csv")


@staff_bp.get("/<int:activity_id>/attendance.xlsx")
def attendance_xlsx(activity_id: int):
    return _attendance_export(activity_id, "xlsx")


@staff_bp.get("/stats")
def stats():
    figures = services.statistics(db.session, months=12, zone=_zone())
    peak = max((f.attendances for f in figures), default=0)
    return render("checkin/stats.html", figures=figures, categories=CATEGORY_LABELS, peak=peak)
