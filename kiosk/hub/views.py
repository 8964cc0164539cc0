"""The district's pages on the hub: login, the dashboard (tree, figures, chart, export),
centres with enrolment codes and keys, conflicts. District staff log in with hub accounts
(HubUser); a sub-district admin sees only their branch."""

from __future__ import annotations

from datetime import datetime
from functools import wraps
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from kiosk.centres.models import Centre, CentreLevel
from kiosk.extensions import db, limiter
from kiosk.hub import dashboard, services
from kiosk.hub.models import HubConflict, HubKey, HubRole, HubUser
from kiosk.hub.services import HubError
from kiosk.staff.forms import ConfirmForm
from kiosk.web import csv_download, render, xlsx_download

bp = Blueprint("hub", __name__, url_prefix="/district")
SESSION_KEY = "hub_user_id"


@bp.before_request
def _load_user():
    g.hub_user = None
    user_id = session.get(SESSION_KEY)
    if user_id is not None:
        user = db.session.get(HubUser, user_id)
        g.hub_user = user if user is not None and user.active else None
    if g.hub_user is None and request.endpoint != "hub.login":
        return redirect(url_for("hub.login", next=request.path))
    return None


def district_only(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.hub_user.role != HubRole.DISTRICT:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    form = ConfirmForm()
    error = None
    if request.method == "POST" and form.validate_on_submit():
        user = dashboard.check_login(db.session, request.form.get("username", ""), request.form.get("password", ""))
        if user is not None:
            session.clear()
            session[SESSION_KEY] = user.id
            return redirect(url_for("hub.index"))
        error = _("Wrong username or password.")
    return render("hub/login.html", form=form, error=error, status=401 if error else 200)


@bp.post("/logout")
def logout():
    session.pop(SESSION_KEY, None)
    return redirect(url_for("hub.login"))


def _today():
    return datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()


def _report():
    kind = request.args.get("period", "month")
    start, end = dashboard.period(kind, _today(), request.args.get("from", ""), request.args.get("to", ""))
    level = request.args.get("level", "")
    if level not in {lv.value for lv in CentreLevel}:
        level = ""
    return dashboard.report(db.session, g.hub_user, start, end, level=level), kind, level


@bp.get("/")
def index():
    report, kind, level = _report()
    return render(
        "hub/dashboard.html",
        report=report,
        columns=dashboard.COLUMNS,
        bars=dashboard.chart_bars(report.by_day),
        period_kind=kind,
        level=level,
        levels=list(CentreLevel),
        user=g.hub_user,
    )


def _table() -> list[list]:
    report, _kind, _level = _report()
    header = [_("Code"), _("Centre"), _("Level"), *[str(label) for _key, label in dashboard.COLUMNS], _("Last sync")]
    rows: list[list] = [header]
    for row in report.rows:
        last = row.last_sync.astimezone(ZoneInfo(current_app.config["TIMEZONE"])).strftime("%Y-%m-%d %H:%M") if row.last_sync else ""
        rows.append([row.centre.code, row.centre.name, row.centre.level.value, *[row.figures.get(key, 0) for key, _l in dashboard.COLUMNS], last])
    rows.append(["", _("Total"), "", *[report.totals.get(key, 0) for key, _l in dashboard.COLUMNS], ""])
    return rows


@bp.get("/export.csv")
def export_csv():
    return csv_download(_table(), "district-figures.csv")


@bp.get("/export.xlsx")
def export_xlsx():
    return xlsx_download(_table(), "district-figures.xlsx", sheet_title="figures")


@bp.get("/centres")
@district_only
def centres():
    keys = list(db.session.scalars(select(HubKey).order_by(HubKey.created_at.desc())))
    conflicts = list(db.session.scalars(select(HubConflict).order_by(HubConflict.received_at.desc()).limit(100)))
    tree = dashboard.visible_centres(db.session, g.hub_user)
    return render("hub/centres.html", tree=tree, keys=keys, conflicts=conflicts, form=ConfirmForm(), code=session.pop("hub_new_code", None))


@bp.post("/centres/<code>/enrolment")
@district_only
def new_enrolment(code: str):
    if ConfirmForm().validate_on_submit():
        try:
            session["hub_new_code"] = (code, services.create_enrolment(db.session, code, created_by=g.hub_user.username))
        except HubError as error:
            flash(str(error.message), "error")
    return redirect(url_for("hub.centres"))


@bp.post("/centres/<code>/revoke")
@district_only
def revoke(code: str):
    if ConfirmForm().validate_on_submit():
        try:
            count = services.revoke_keys(db.session, code)
            flash(_("%(n)d key(s) of %(code)s revoked.", n=count, code=code), "success")
        except HubError as error:
            flash(str(error.message), "error")
    return redirect(url_for("hub.centres"))


@bp.app_template_filter("centre_level")
def _centre_level(level) -> str:
    return {
        "district": _("District"),
        "subdistrict": _("Sub-district"),
        "community": _("Community"),
        "village": _("Village"),
        "business": _("Business district"),
        "industry": _("Industry"),
    }.get(str(getattr(level, "value", level)), str(level))


def centre_by_code(code: str) -> Centre | None:
    return db.session.scalar(select(Centre).where(Centre.code == code))
