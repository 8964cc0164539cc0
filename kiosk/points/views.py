"""我的积分 on the kiosk (visitor side) and rewards / redemptions for staff."""

from __future__ import annotations

import uuid

from flask import abort, current_app, flash, make_response, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from kiosk.booking.services import take_waitlist_news
from kiosk.checkin.services import attended_count
from kiosk.devices.access import current_device, kiosk_blueprint
from kiosk.errors import KioskError
from kiosk.extensions import db, limiter
from kiosk.home.views import after_visit_url
from kiosk.i18n import _l
from kiosk.members.models import Member
from kiosk.members.scan import MEMBER_SESSION_KEY, member_signer
from kiosk.members.services import resolve_card_number
from kiosk.points import services
from kiosk.points.forms import REASON_LABELS, CancelRedemptionForm, RewardForm
from kiosk.points.models import Reward
from kiosk.privacy import mask_name
from kiosk.staff.access import client_address, staff_blueprint
from kiosk.staff.forms import ConfirmForm
from kiosk.web import render, submit_form

bp = kiosk_blueprint("points", __name__)
staff_bp = staff_blueprint("rewards", __name__, "/staff/rewards")


# ---- visitor side ----


def identified_member() -> Member | None:
    """The member whose card was scanned in this visit, if the card is still valid."""
    card = session.get(MEMBER_SESSION_KEY)
    if not isinstance(card, dict) or card.get("done"):
        return None
    member = db.session.get(Member, card.get("id", 0))
    if member is None or not member.active or member.card_serial != card.get("serial"):
        session.pop(MEMBER_SESSION_KEY, None)
        return None
    return member


@bp.get("/points")
def index():
    member = identified_member()
    if member is None:
        # Only the card shows points (its QR, or the card number printed under it): a phone
        # number typed here could be anyone's.
        return render("points/page.html")
    balance = services.balance(db.session, member.id)
    # A waitlist place the member got is told the next time their card is used (the waiting
    # list's promise): here, where a card scanned at the home screen leads.
    notices = take_waitlist_news(db.session, member_id=member.id)
    return render(
        "points/member.html",
        notices=notices,
        masked_name=mask_name(member.name),
        balance=balance,
        entries=services.recent_entries(db.session, member.id, limit=8),
        attended=attended_count(db.session, member.id),
        rewards=services.list_rewards(db.session, available_only=True),
        reason_labels=REASON_LABELS,
    )


def _card_number_limit() -> str:
    return current_app.config["CARD_NUMBER_RATE_LIMIT"]


@bp.post("/points/card")
@limiter.limit(_card_number_limit)
def card_number():
    """The card number typed on the keypad when the scanner fails: as good as scanning the card."""
    typed = request.form.get("card_number")
    try:
        member = resolve_card_number(db.session, typed, member_signer(current_app.config))
    except KioskError as error:
        return render("points/page.html", status=error.status, error=error, typed=typed)
    session[MEMBER_SESSION_KEY] = {"id": member.id, "serial": member.card_serial}
    response = index()
    response.headers["HX-Push-Url"] = url_for("points.index")
    return response


class NoCardError(KioskError):
    status = 403


def _require_member() -> Member:
    member = identified_member()
    if member is None:
        # Typically the idle reset or 返回首页 ended the visit between two taps.
        raise NoCardError("no_card", _l("Please scan your member card first."))
    return member


@bp.errorhandler(NoCardError)
def _no_card(error: NoCardError):
    return render("points/refused.html", status=error.status, error=error)


@bp.get("/points/rewards/<int:reward_id>")
def confirm(reward_id: int):
    member = _require_member()
    reward = db.session.get(Reward, reward_id)
    if reward is None or not reward.active:
        abort(404)
    balance = services.balance(db.session, member.id)
    # One key per screen: a double tap or a retry of this confirmation redeems once.
    return render("points/confirm.html", reward=reward, balance=balance, request_key=uuid.uuid4().hex)


@bp.post("/points/redeem")
def redeem():
    request_key = request.form.get("request_key", "")
    member = identified_member() or _replayed_redemption(request_key) or _require_member()
    try:
        redemption = services.redeem(
            db.session,
            member_id=member.id,
            reward_id=request.form.get("reward_id"),
            channel="kiosk",
            request_key=request_key,
            remote_addr=client_address(),
            device_id=device.id if (device := current_device()) is not None else None,
        )
    except services.PointsError as error:
        return render("points/refused.html", status=error.status, error=error)
    # The task is done: from now on nobody can see or spend this member's points on this kiosk
    # (not with the back button either). Only a retry of this very redemption (a double tap,
    # same request key) is still answered, with the same pickup code.
    session[MEMBER_SESSION_KEY] = {**session[MEMBER_SESSION_KEY], "done": True, "key": request_key}
    return render("points/done.html", redemption=redemption, balance=services.balance(db.session, member.id), next_url=after_visit_url())


def _replayed_redemption(request_key: str) -> Member | None:
    card = session.get(MEMBER_SESSION_KEY)
    if isinstance(card, dict) and card.get("done") and request_key and card.get("key") == request_key:
        return db.session.get(Member, card.get("id", 0))
    return None


@bp.get("/rewards/<int:reward_id>/picture")
def picture(reward_id: int):
    reward = db.session.get(Reward, reward_id)
    if reward is None or not reward.picture:
        abort(404)
    response = make_response(reward.picture)
    response.headers["Content-Type"] = reward.picture_type or "image/jpeg"
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


# ---- staff: rewards and redemptions ----


def _save(reward: Reward | None, form: RewardForm):
    upload = form.picture.data
    picture = upload.read(services.MAX_PICTURE_BYTES + 1) if upload and getattr(upload, "filename", "") else None
    return services.save_reward(
        db.session,
        reward,
        name=form.name.data,
        description=form.description.data,
        cost=form.cost.data,
        stock=form.stock.data,
        active=bool(form.active.data),
        picture=picture,
        actor=current_user,
        remote_addr=client_address(),
    )


@staff_bp.route("/", methods=["GET", "POST"])
def rewards():
    form = RewardForm()
    saved, status = submit_form(form, lambda: _save(None, form))
    if saved is not None:
        flash(_("Saved."), "success")
        return redirect(url_for("rewards.rewards"))
    return render("points/staff_rewards.html", form=form, rewards=services.list_rewards(db.session), status=status)


@staff_bp.route("/<int:reward_id>", methods=["GET", "POST"])
def edit_reward(reward_id: int):
    reward = db.session.get(Reward, reward_id) or abort(404)
    form = RewardForm(obj=reward) if request.method == "GET" else RewardForm()
    saved, status = submit_form(form, lambda: _save(reward, form))
    if saved is not None:
        flash(_("Saved."), "success")
        return redirect(url_for("rewards.rewards"))
    return render("points/staff_reward_edit.html", form=form, reward=reward, status=status)


@staff_bp.get("/redemptions")
def redemptions():
    code = request.args.get("code", "")[:12]
    return render(
        "points/staff_redemptions.html",
        pending=services.pending_redemptions(db.session, code),
        recent=services.recent_redemptions(db.session, limit=30),
        code=code,
        confirm_form=ConfirmForm(),
        cancel_form=CancelRedemptionForm(),
    )


@staff_bp.post("/redemptions/<int:redemption_id>/hand-over")
def hand_over(redemption_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        redemption = services.hand_over(db.session, redemption_id, actor=current_user, remote_addr=client_address())
    except services.PointsError as error:
        flash(str(error.message), "error")
    else:
        flash(_("Handed over: %(reward)s (pickup code %(code)s).", reward=redemption.reward.name, code=redemption.pickup_code), "success")
    return redirect(url_for("rewards.redemptions"))


@staff_bp.post("/redemptions/<int:redemption_id>/cancel")
def cancel(redemption_id: int):
    form = CancelRedemptionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.cancel_redemption(db.session, redemption_id, actor=current_user, note=form.note.data, remote_addr=client_address())
    except services.PointsError as error:
        flash(str(error.message), "error")
    else:
        flash(_("Cancelled; the points and the stock were returned."), "success")
    return redirect(url_for("rewards.redemptions"))
