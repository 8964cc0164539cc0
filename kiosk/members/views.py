"""Staff pages for members: register, search, export, edit, cards, ledger."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, make_response, redirect, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from kiosk.extensions import db
from kiosk.members import services
from kiosk.members.forms import AGE_BAND_LABELS, DeskRedeemForm, MemberEditForm, MemberForm, PointsCorrectionForm
from kiosk.members.models import Member
from kiosk.members.scan import member_signer
from kiosk.points import services as points
from kiosk.points.forms import REASON_LABELS, REDEMPTION_STATUS_LABELS
from kiosk.points.models import PointsEntry
from kiosk.privacy import mask_name, mask_phone
from kiosk.qr import qr_png, qr_svg
from kiosk.staff.access import client_address, is_admin, staff_blueprint
from kiosk.staff.forms import ConfirmForm
from kiosk.web import csv_download, render, submit_form, xlsx_download

bp = staff_blueprint("members", __name__, "/staff/members")
PER_PAGE = 50


def _member_or_404(member_id: int) -> Member:
    return db.session.get(Member, member_id) or abort(404)


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1


@bp.get("/")
def index():
    query = request.args.get("q", "")[:40]
    page = _page_number()
    members, total = services.search_members(db.session, query, page=page, per_page=PER_PAGE)
    return render("members/list.html", members=members, total=total, query=query, page=page, pages=max(1, -(-total // PER_PAGE)), balances=_balances(members))


def _balances(members: list[Member]) -> dict[int, int]:
    """All balances in one query (not one per row)."""
    ids = [m.id for m in members]
    if not ids:
        return {}
    rows = db.session.execute(select(PointsEntry.member_id, func.sum(PointsEntry.delta)).where(PointsEntry.member_id.in_(ids)).group_by(PointsEntry.member_id))
    return {member_id: int(total) for member_id, total in rows}


def _export_rows(members: list[Member]) -> list[list]:
    balances = _balances(members)
    admin = is_admin()
    header = [_("Member number"), _("Name"), _("Mobile number"), _("Community or village"), _("Age band"), _("Status"), _("Points"), _("Registered")]
    rows = [header]
    for m in members:
        rows.append(
            [
                m.member_number,
                m.name,
                m.phone if admin else mask_phone(m.phone),
                m.community,
                str(AGE_BAND_LABELS[m.age_band]),
                _("Active") if m.active else _("Deactivated"),
                balances.get(m.id, 0),
                format_datetime(m.created_at, "yyyy-MM-dd HH:mm"),
            ]
        )
    return rows


def _all_matching(query: str) -> list[Member]:
    members, total = services.search_members(db.session, query, per_page=1_000_000)
    return members


def _export(kind: str):
    from kiosk.staff.services import record_audit

    rows = _export_rows(_all_matching(request.args.get("q", "")[:40]))
    record_audit(db.session, current_user, "member.export", detail=f"{kind} phones={'full' if is_admin() else 'masked'}", remote_addr=client_address())
    db.session.commit()
    return csv_download(rows, "members.csv") if kind == "csv" else xlsx_download(rows, "members.xlsx", "members")


@bp.get("/export.csv")
def export_csv():
    return _export("csv")


@bp.get("/export.xlsx")
def export_xlsx():
    return _export("xlsx")


@bp.route("/new", methods=["GET", "POST"])
def new():
    form = MemberForm()
    member, status = submit_form(
        form,
        lambda: services.register_member(
            db.session,
            name=form.name.data,
            phone=form.phone.data,
            community=form.community.data,
            age_band=form.age_band.data,
            consent=bool(form.consent.data),
            consent_version=current_app.config["PRIVACY_NOTICE_VERSION"],
            actor=current_user,
            remote_addr=client_address(),
        ),
    )
    if member is not None:
        flash(_("Member registered. Print the member card now."), "success")
        return redirect(url_for("members.detail", member_id=member.id))
    return render("members/new.html", form=form, status=status, notice_version=current_app.config["PRIVACY_NOTICE_VERSION"])


def _detail(member: Member, *, edit_form=None, points_form=None, redeem_form=None, status: int = 200):
    edit_form = edit_form or MemberEditForm(
        formdata=None, name=member.name, phone="" if not is_admin() else member.phone, community=member.community, age_band=member.age_band.value
    )
    rewards = points.list_rewards(db.session, available_only=True)
    redeem_form = redeem_form or DeskRedeemForm(formdata=None, request_key=uuid.uuid4().hex)
    redeem_form.reward_id.choices = [(str(r.id), f"{r.name} · {r.cost}") for r in rewards]
    entries = points.recent_entries(db.session, member.id, limit=50)
    return render(
        "members/detail.html",
        status=status,
        member=member,
        balance=points.balance(db.session, member.id),
        entries=entries,
        redemptions=points.recent_redemptions(db.session, member.id, limit=20),
        edit_form=edit_form,
        points_form=points_form or PointsCorrectionForm(formdata=None),
        redeem_form=redeem_form,
        confirm_form=ConfirmForm(),
        phone_shown=member.phone if is_admin() else mask_phone(member.phone),
        age_band_label=AGE_BAND_LABELS[member.age_band],
        reason_labels=REASON_LABELS,
        status_labels=REDEMPTION_STATUS_LABELS,
    )


@bp.get("/<int:member_id>")
def detail(member_id: int):
    return _detail(_member_or_404(member_id))


@bp.post("/<int:member_id>/edit")
def edit(member_id: int):
    member = _member_or_404(member_id)
    form = MemberEditForm()
    saved, status = submit_form(
        form,
        lambda: services.update_member(
            db.session,
            member,
            name=form.name.data,
            phone=form.phone.data,
            community=form.community.data,
            age_band=form.age_band.data,
            actor=current_user,
            remote_addr=client_address(),
        ),
    )
    if saved is None:
        return _detail(_member_or_404(member_id), edit_form=form, status=status)
    flash(_("Saved."), "success")
    return redirect(url_for("members.detail", member_id=member_id))


@bp.post("/<int:member_id>/active")
def set_active(member_id: int):
    member = _member_or_404(member_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.set_member_active(db.session, member, request.form.get("active") == "1", actor=current_user, remote_addr=client_address())
    db.session.commit()
    return redirect(url_for("members.detail", member_id=member_id))


@bp.post("/<int:member_id>/reissue")
def reissue(member_id: int):
    member = _member_or_404(member_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.reissue_card(db.session, member, actor=current_user, remote_addr=client_address())
    db.session.commit()
    flash(_("A new card was issued; the old card no longer works. Print the new one now."), "success")
    return redirect(url_for("members.detail", member_id=member_id))


@bp.post("/<int:member_id>/points")
def correct_points(member_id: int):
    member = _member_or_404(member_id)
    form = PointsCorrectionForm()
    entry, status = submit_form(
        form, lambda: points.correct_points(db.session, member, form.delta.data, form.note.data, actor=current_user, remote_addr=client_address())
    )
    if entry is None:
        return _detail(_member_or_404(member_id), points_form=form, status=status)
    flash(_("Points corrected."), "success")
    return redirect(url_for("members.detail", member_id=member_id))


@bp.post("/<int:member_id>/redeem")
def redeem(member_id: int):
    member = _member_or_404(member_id)
    form = DeskRedeemForm()
    form.reward_id.choices = [(str(r.id), r.name) for r in points.list_rewards(db.session)]
    redemption, status = submit_form(
        form,
        lambda: points.redeem(
            db.session,
            member_id=member.id,
            reward_id=form.reward_id.data,
            channel="desk",
            request_key=form.request_key.data,
            actor=current_user,
            remote_addr=client_address(),
        ),
    )
    if redemption is None:
        return _detail(_member_or_404(member_id), redeem_form=form, status=status)
    flash(_("Redeemed: pickup code %(code)s.", code=redemption.pickup_code), "success")
    return redirect(url_for("members.detail", member_id=member_id))


# ---- the member card ----


def _card_token(member: Member) -> str:
    return services.card_token(member, member_signer(current_app.config), current_app.config["CENTRE_CODE"])


@bp.get("/<int:member_id>/card")
def card(member_id: int):
    member = _member_or_404(member_id)
    number = services.card_number(member, member_signer(current_app.config))
    return render("members/card.html", member=member, masked_name=mask_name(member.name), card_number=f"{number[:6]} {number[6:]}")


@bp.get("/<int:member_id>/card.png")
def card_png(member_id: int):
    member = _member_or_404(member_id)
    response = make_response(qr_png(_card_token(member)))
    response.headers["Content-Type"] = "image/png"
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f"attachment; filename=member-{member.member_number}.png"
    return response


@bp.get("/<int:member_id>/card.svg")
def card_svg(member_id: int):
    member = _member_or_404(member_id)
    response = make_response(qr_svg(_card_token(member)))
    response.headers["Content-Type"] = "image/svg+xml"
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f"attachment; filename=member-{member.member_number}.svg"
    return response
