"""The staff area: every route needs a login; admin routes need the admin role."""

from __future__ import annotations

from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from kiosk.db import utcnow
from kiosk.extensions import db, limiter, login_manager
from kiosk.features import FigureContext, registry
from kiosk.i18n import _l
from kiosk.staff import describe, services, sessions
from kiosk.staff.access import mark_active, role_required, staff_blueprint
from kiosk.staff.forms import ConfirmForm, LoginForm, NewStaffForm, PasswordChangeForm, PasswordResetForm
from kiosk.staff.models import StaffRole, StaffUser
from kiosk.web import render, submit_form

bp = staff_blueprint("staff", __name__, "/staff")

login_manager.login_view = "staff.login"
login_manager.login_message = _l("Please log in first.")
# Flashed into the session as text (kiosk.i18n lazy strings are not markup, so the session
# serializer would not take one).
login_manager.localize_callback = str
login_manager.login_message_category = "info"


@login_manager.user_loader
def _load_user(user_id: str) -> StaffUser | None:
    return sessions.load_user(db.session, user_id)


def _safe_next(target: str | None) -> str:
    """Only local paths: a login link must not bounce a user to another site."""
    if target and target.isprintable() and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("staff.dashboard")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = services.log_in(db.session, form.username.data, form.password.data, remote_addr=request.remote_addr or "")
        if user is None:
            form.password.errors.append(_("Wrong username or password."))
            return render("staff/login.html", form=form, status=401)
        # A fresh CSRF token for the logged-in session; the cookie lives
        # PERMANENT_SESSION_LIFETIME at most, and ends sooner when idle (staff.access).
        session.pop("csrf_token", None)
        session.permanent = True
        login_user(user)
        mark_active()
        return redirect(_safe_next(request.args.get("next")))
    status = 400 if request.method == "POST" else 200
    return render("staff/login.html", form=form, status=status)


@bp.post("/logout")
def logout():
    services.log_out(db.session, current_user, remote_addr=request.remote_addr or "")
    logout_user()
    session.pop("csrf_token", None)
    flash(_("You have logged out."), "info")
    return redirect(url_for("staff.login"))


@bp.get("/")
def dashboard():
    context = FigureContext(now=utcnow(), zone=ZoneInfo(current_app.config["TIMEZONE"]), config=current_app.config)
    cards = [(card, card.figures(db.session, context) if card.figures else ()) for card in registry().cards if current_user.has_role(card.role)]
    return render("staff/dashboard.html", cards=cards)


@bp.route("/users", methods=["GET", "POST"])
@role_required(StaffRole.ADMIN)
def users():
    form = NewStaffForm()
    created, status = submit_form(
        form,
        lambda: services.create_staff_user(
            db.session,
            form.username.data,
            form.password.data,
            form.role.data,
            display_name=form.display_name.data or "",
            actor=current_user,
            remote_addr=request.remote_addr or "",
        ),
    )
    if created is not None:
        flash(_("Staff account %(name)s created.", name=created.username), "success")
        return redirect(url_for("staff.users"))
    return render("staff/users.html", form=form, toggle_form=ConfirmForm(), users=services.list_staff(db.session), status=status)


@bp.post("/users/<int:user_id>/active")
@role_required(StaffRole.ADMIN)
def set_active(user_id: int):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    user = services.get_staff_user(db.session, user_id) or abort(404)
    try:
        services.set_active(db.session, user, request.form.get("active") == "1", actor=current_user, remote_addr=request.remote_addr or "")
    except services.StaffError as error:
        flash(str(error.message), "error")
    return redirect(url_for("staff.users"))


def _set_password(form, user: StaffUser, current_password: str | None) -> bool:
    sessions.change_password(
        db.session,
        user,
        form.new_password.data,
        actor=current_user,
        current_password=current_password,
        remote_addr=request.remote_addr or "",
        field="new_password",
    )
    return True


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def password():
    """Any staff user changes their own password; their other sessions end, this one goes on."""
    form = PasswordChangeForm()
    user = current_user._get_current_object()
    changed, status = submit_form(form, lambda: _set_password(form, user, form.current_password.data))
    if changed:
        # The session version moved on: log this browser in again under the new one.
        session.pop("csrf_token", None)
        login_user(user)
        mark_active()
        flash(_("Your password has been changed. Any other browser logged in as you has been logged out."), "success")
        return redirect(url_for("staff.dashboard"))
    return render("staff/password.html", form=form, target=None, min_length=services.MIN_PASSWORD_LENGTH, status=status)


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
@role_required(StaffRole.ADMIN)
def reset_password(user_id: int):
    """An administrator sets a new password for another account (a forgotten password)."""
    user = services.get_staff_user(db.session, user_id) or abort(404)
    if user.id == current_user.id:
        return redirect(url_for("staff.password"))
    form = PasswordResetForm()
    changed, status = submit_form(form, lambda: _set_password(form, user, None))
    if changed:
        flash(_("A new password has been set for %(name)s; their sessions have been logged out.", name=user.username), "success")
        return redirect(url_for("staff.users"))
    return render("staff/password.html", form=form, target=user, min_length=services.MIN_PASSWORD_LENGTH, status=status)


@bp.get("/audit")
@role_required(StaffRole.ADMIN)
def audit():
    action = request.args.get("action", "")[:60]
    entries = services.recent_audit(db.session, action=action or None)
    return render(
        "staff/audit.html",
        entries=entries,
        action=action,
        action_labels=describe.ACTION_LABELS,
        actor_labels=describe.ACTOR_LABELS,
        targets=describe.describe_references(db.session, [e.target for e in entries if e.target]),
    )
