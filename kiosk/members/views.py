"""Staff pages for members: register, search, export, edit, cards, ledger."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user

from kiosk.extensions import db, limiter
from kiosk.members import services
from kiosk.members.forms import AGE_BAND_LABELS, DeskRedeemForm, MemberEditForm, MemberForm, PointsCorrectionForm
from kiosk.members.models import Member
from kiosk.members.scan import member_signer
from kiosk.points import services as points
from kiosk.points.forms import REASON_LABELS, REDEMPTION_STATUS_LABELS
from kiosk.privacy import mask_name, mask_phone
from kiosk.qr import labelled_png, labelled_svg, qr_png, qr_svg
from kiosk.staff.access import client_address, is_admin, staff_blueprint
from kiosk.staff.describe import describe_references
from kiosk.staff.forms import ConfirmForm
from kiosk.web import csv_download, download, render, submit_form, xlsx_download

bp = staff_blueprint("members", __name__, "/staff/members")
PER_PAGE = 50


def _member_or_404(member_id: int) -> Member:
    return services.get_member(db.session, member_id) or abort(404)


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 100_000 else 1


def _search_limit() -> str:
    return current_app.config["MEMBER_SEARCH_RATE_LIMIT"]


def _staff_key() -> str:
    return f"staff:{current_user.get_id()}"


@bp.get("/")
@limiter.limit(_search_limit, key_func=_staff_key, exempt_when=lambda: not request.args.get("q"))
def index():
    query = request.args.get("q", "")[:40]
    page = _page_number()
    members, total = services.staff_search(
        db.session, query, page=page, per_page=PER_PAGE, any_digits=is_admin(), actor=current_user, remote_addr=client_address()
    )
    return render(
        "members/list.html",
        members=members,
        total=total,
        query=query,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        balances=services.balances(db.session, members),
    )


def _export_rows(export: services.MemberExport) -> list[list]:
    header = [_("Member number"), _("Name"), _("Mobile number"), _("Community or village"), _("Age band"), _("Status"), _("Points"), _("Registered")]
    rows = [header]
    for m in export.members:
        rows.append(
            [
                m.member_number,
                m.name,
                m.phone if export.full_phones else mask_phone(m.phone),
                m.community,
                str(AGE_BAND_LABELS[m.age_band]),
                _("Active") if m.active else _("Deactivated"),
                export.balances.get(m.id, 0),
                format_datetime(m.created_at, "yyyy-MM-dd HH:mm"),
            ]
        )
    return rows


def _export(kind: str):
    export = services.export_members(
        db.session, request.args.get("q", "")[:40], kind=kind, full_phones=is_admin(), actor=current_user, remote_addr=client_address()
    )
    rows = _export_rows(export)
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
        references=describe_references(db.session, [e.reference for e in entries if e.reference]),
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
    return redirect(url_for("members.detail", member_id=member_id))


@bp.post("/<int:member_id>/reissue")
def reissue(member_id: int):
    member = _member_or_404(member_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.reissue_card(db.session, member, actor=current_user, remote_addr=client_address())
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


def _card_labels(member: Member) -> dict:
    # The name masked as on the printed card: a lost card should not tell a finder much.
    return {
        "heading": f"{_('Member card')} · {mask_name(member.name)}",
        "lines": (f"{_('No.')} {member.member_number}-{member.card_serial}",),
        "footer": current_app.config["CENTRE_NAME"],
    }


def _card_download(member: Member, data: bytes, mimetype: str, extension: str):
    """Inline (the card page shows it) unless ?download=1; the file is named after the member."""
    name = f"{_('Member QR code')}-{member.member_number}-{member.name}.{extension}"
    return download(data, name, mimetype, as_attachment=bool(request.args.get("download")))


@bp.get("/<int:member_id>/card.png")
def card_png(member_id: int):
    member = _member_or_404(member_id)
    token = _card_token(member)
    # The download carries who and where (a bare QR file is anonymous); the page's image is bare.
    data = labelled_png(token, **_card_labels(member)) if request.args.get("download") else qr_png(token)
    return _card_download(member, data, "image/png", "png")


@bp.get("/<int:member_id>/card.svg")
def card_svg(member_id: int):
    member = _member_or_404(member_id)
    token = _card_token(member)
    data = labelled_svg(token, **_card_labels(member)) if request.args.get("download") else qr_svg(token)
    return _card_download(member, data, "image/svg+xml", "svg")
