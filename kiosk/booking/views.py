"""Booking pages: the kiosk flow (service → day → slot → phone → ticket), look up / cancel,
the desk's queue and call display, services and schedules, reports and exports."""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask, Response, abort, current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from kiosk.booking import printing, services
from kiosk.booking.cache import AvailabilityCache, availability_cache
from kiosk.booking.forms import (
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    PROVIDER_KIND_LABELS,
    STATUS_LABELS,
    WEEKDAY_LABELS,
    ClosureForm,
    LiftBlockForm,
    OverrideForm,
    ProviderForm,
    ServiceForm,
    TemplateForm,
    WalkInForm,
)
from kiosk.booking.models import Booking, BookingChannel, Service
from kiosk.booking.scan import JOINED_SESSION_KEY, NOTICE_SESSION_KEY, PENDING_SESSION_KEY
from kiosk.db import utcnow
from kiosk.devices.access import kiosk_blueprint
from kiosk.extensions import db
from kiosk.home.views import after_visit_url
from kiosk.points.views import identified_member
from kiosk.privacy import mask_name, mask_phone
from kiosk.qr import qr_svg
from kiosk.staff.access import client_address, is_admin, staff_blueprint
from kiosk.staff.forms import ConfirmForm
from kiosk.web import BARE_LAYOUT, FULL_LAYOUT, MAIN_TARGET, csrf_token, csv_download, elder_mode, local_now, prebuilt, render, submit_form, xlsx_download

bp = kiosk_blueprint("booking", __name__)
staff_bp = staff_blueprint("bookings", __name__, "/staff/bookings")


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


def _rules() -> services.BookingRules:
    return services.rules_from_config(current_app.config)


def _now() -> datetime:
    return utcnow()


def _today() -> date:
    return services.local_today(_now(), _zone())


# ---- natural Chinese dates: 11月28日 周六 14:00 ----


def day_text(day: date) -> str:
    today = _today()
    text = f"{day.month}月{day.day}日 {format_date(day, 'EEE')}" if str(get_locale()) == "zh" else format_date(day, "EEE d MMM")
    if day == today:
        return _("Today") + " · " + text
    if day == today + timedelta(days=1):
        return _("Tomorrow") + " · " + text
    return text


def strip_day_text(day: date) -> str:
    """A day of the strip on one short line: 今天 11月29日, 明天 11月30日, 周三 12月2日."""
    today = _today()
    zh = str(get_locale()) == "zh"
    if day == today:
        name = _("Today")
    elif day == today + timedelta(days=1):
        name = _("Tomorrow")
    else:
        name = format_date(day, "EEE")
    return f"{name} {day.month}月{day.day}日" if zh else f"{name} {format_date(day, 'd MMM')}"


def time_text(moment: datetime) -> str:
    return moment.astimezone(_zone()).strftime("%H:%M")


def when_text(moment: datetime | None, day: date | None = None) -> str:
    if moment is None:
        return day_text(day) if day else ""
    local = moment.astimezone(_zone())
    return f"{day_text(local.date())} {local.strftime('%H:%M')}"


def _forget_pending_slot() -> None:
    """A member card books only on the keypad screen it was scanned at: any other page the
    visitor opens (home, a check-in screen, 我的积分) forgets the chosen slot, so a card
    scanned there never books the previous screen's slot (nor the previous visitor's)."""
    if request.method == "GET" and request.endpoint not in {"booking.slot_page", "static"} and PENDING_SESSION_KEY in session:
        session.pop(PENDING_SESSION_KEY, None)


def setup(app: Flask) -> None:
    app.before_request(_forget_pending_slot)
    app.jinja_env.filters["booking_day"] = day_text
    app.jinja_env.filters["booking_strip_day"] = strip_day_text
    app.jinja_env.filters["booking_time"] = time_text
    app.jinja_env.filters["booking_when"] = when_text
    app.jinja_env.filters["slot_key"] = lambda slot: slot.key(ZoneInfo(app.config["TIMEZONE"]))


# ---- the kiosk: service → day → slot → phone → ticket ----


@bp.get("/booking")
def index():
    session.pop(PENDING_SESSION_KEY, None)
    return render("booking/index.html", services=services.list_services(db.session, active_only=True))


def _service_or_404(service_id: int) -> Service:
    try:
        return services.get_service(db.session, service_id, active_only=True)
    except services.BookingError:
        abort(404)


@bp.get("/booking/<int:service_id>")
def service_page(service_id: int):
    """The day strip (free places per day) and the slots of the chosen day.

    A day tap (htmx, aimed at #booking-day) gets the strip and slots alone; a tile tap or a
    plain visit gets the page. Both come from the availability cache when nothing could have
    changed them (kiosk.booking.cache): the strip as rendered, and the whole page rendered
    once per language, elder mode and layout with stand-ins for the CSRF token and the top
    bar's clock, which each request fills in (as kiosk.home.views.home_page). The page is
    kept as long as its strip (a commit, a slot's lead time running out, midnight: the top
    bar's date), not rebuilt every minute for the clock: at 20 connections every thread
    serving at the turn of a minute rebuilt it at once (issue 11, part 8b)."""
    session.pop(PENDING_SESSION_KEY, None)
    raw_day = request.args.get("day", "")[:10]
    now = _now()
    # The generation is taken before reading, so a write committed meanwhile discards this read.
    generation = availability_cache.generation(db.session)
    htmx = getattr(request, "htmx", None)
    if htmx and request.headers.get("HX-Target") == "booking-day":
        return _html(_day_view(service_id, raw_day, generation, now)[1])
    bare = bool(htmx) and htmx.target == MAIN_TARGET and not htmx.boosted
    pages = current_app.extensions.setdefault(PAGES_KEY, AvailabilityCache())
    key = (str(db.session.get_bind().url), service_id, raw_day, str(get_locale()), elder_mode(), bare, request.script_root)
    parts = pages.get(key, generation, now)
    if parts is None:
        heading, day_html, until = _day_view(service_id, raw_day, generation, now)
        body = render_template(
            "booking/service.html",
            layout=BARE_LAYOUT if bare else FULL_LAYOUT,
            service=heading,
            day_html=day_html,
            csrf_token=lambda: _CSRF_SLOT,
            clock_text=_CLOCK_SLOT,
        )
        parts = _split_slots(body)
        pages.put(key, generation, now, until, parts)
    values = {_CSRF_SLOT: csrf_token() if _CSRF_SLOT in parts else "", _CLOCK_SLOT: local_now().strftime("%H:%M")}
    return _html("".join(values.get(part, part) for part in parts))


PAGES_KEY = "kiosk.booking.pages"
# Stand for the CSRF token and the top bar's clock in a cached page (per-process random words
# no page can contain).
_CSRF_SLOT = f"csrf-slot-{secrets.token_hex(16)}"
_CLOCK_SLOT = f"clock-slot-{secrets.token_hex(16)}"


def _split_slots(body: str) -> tuple[str, ...]:
    """The page as literal text and stand-ins, in order (a stand-in is its own item)."""
    return tuple(piece for piece in re.split(f"({_CSRF_SLOT}|{_CLOCK_SLOT})", body) if piece)


def _html(body: str) -> Response:
    response = make_response(str(body))
    response.vary.add("HX-Request")
    return response


@dataclass(frozen=True)
class _Heading:
    """What the service page shows of the service besides the strip (kept with the strip)."""

    id: int
    name: str
    place: str
    description: str


def _day_view(service_id: int, raw_day: str, generation: int | None, now: datetime) -> tuple[_Heading, Markup, datetime]:
    """The service's heading, the strip and the chosen day's slots as HTML, and when they
    stop being valid by the clock alone; from the availability cache when nothing could have
    changed them (kiosk.booking.cache). A cached entry answers without loading the service:
    any commit (a service closed or renamed included) empties the cache first, so it still
    stands for an active service."""
    zone = _zone()
    key = (str(db.session.get_bind().url), service_id, raw_day, str(get_locale()))
    heading, html, until = availability_cache.get_or_compute(key, generation, now, lambda: _compute_day_view(service_id, raw_day, now, zone))
    return heading, Markup(html), until


def _compute_day_view(service_id: int, raw_day: str, now: datetime, zone: ZoneInfo) -> tuple[datetime, tuple[_Heading, str, datetime]]:
    """When the view stops being valid by the clock alone, and the view (heading, HTML, that moment)."""
    service = _service_or_404(service_id)
    days = services.availability(db.session, service, now, zone)
    chosen = next((d for d in days if d.day.isoformat() == raw_day), None) if raw_day else None
    if chosen is None:
        chosen = next((d for d in days if d.free), days[0] if days else None)
    html = render_template("booking/_day.html", service=service, days=days, chosen=chosen, now=now, lead=timedelta(minutes=service.lead_minutes))
    heading = _Heading(service.id, service.name, service.place or "", service.description or "")
    until = services.availability_changes_at(service, days, now, zone)  # a slot's cut-off or midnight
    return until, (heading, html, until)


@bp.get("/booking/<int:service_id>/slot/<slot_key>")
def slot_page(service_id: int, slot_key: str):
    """The phone keypad (or a member card) for one slot."""
    service = _service_or_404(service_id)
    try:
        slot = services.find_slot(db.session, service, slot_key, _zone())
    except services.BookingError as error:
        return render("booking/refused.html", status=error.status, error=error, service=service)
    request_key = services.new_request_key()
    # A member card scanned on this screen books this slot (booking.scan).
    pending = {"service": service.id, "slot": slot_key, "key": request_key, "at": time.time()}
    if request.args.get("waitlist"):
        pending["waitlist"] = True  # the waiting list's screen: a card joins the list (booking.scan)
    session[PENDING_SESSION_KEY] = pending
    member = identified_member()
    # One step back to the same day's times (slot_key begins with the local date, YYYYMMDD).
    day = date(int(slot_key[:4]), int(slot_key[4:6]), int(slot_key[6:8]))
    return render(
        "booking/slot.html",
        service=service,
        slot=slot,
        slot_key=slot_key,
        request_key=request_key,
        member_name=mask_name(member.name) if member else None,
        back_url=url_for("booking.service_page", service_id=service.id, day=day.isoformat()),
    )


def _ticket_url(ticket: services.TicketView) -> str:
    """The ticket page's URL (the answer's HX-Location): a prefix built once per signing key,
    centre and script root (``url_for`` quotes character by character, so the URL of the token
    head plus the tail is the token's URL; the tail is digits, base64url and a dot), and the
    tail signed per booking (services.TicketTokens): 4.9 µs against 10.3 µs for url_for and a
    new signer per booking (issue 11 part 5)."""
    config = current_app.config
    urls = current_app.extensions.setdefault("booking_ticket_urls", {})
    key = (config["SIGNING_KEY"], config["CENTRE_CODE"], request.script_root)
    found = urls.get(key)
    if found is None:
        tokens = services.TicketTokens(config["SIGNING_KEY"], config["CENTRE_CODE"])
        if len(urls) >= 8:
            urls.clear()
        found = urls[key] = (url_for("booking.ticket", token=tokens.head), tokens)
    prefix, tokens = found
    return prefix + tokens.tail(ticket.booking_id)


def _print(ticket: services.TicketView) -> bool:
    config = current_app.config
    spec = config.get("RECEIPT_PRINTER", "")
    if not spec:
        return False
    token = services.ticket_token(ticket.booking_id, services.ticket_signer(config), config["CENTRE_CODE"])
    return printing.try_print(
        spec,
        lambda printer: printing.print_ticket(
            printer,
            centre=config["CENTRE_NAME"],
            label=ticket.label,
            when=when_text(ticket.starts_at, ticket.day),
            place=ticket.service_place,
            # book() counts them for a ticket of its own today only (None otherwise): a booking
            # made just before midnight for the next day prints without the line, not without a ticket.
            ahead=_("%(n)d people ahead of you", n=ticket.people_ahead) if ticket.people_ahead is not None and ticket.day == _today() else "",
            token=token,
            footer=_("Please come 5 minutes early. Scan this ticket at the kiosk to cancel."),
        ),
    )


def _after_booking(ticket: services.TicketView):
    session.pop(PENDING_SESSION_KEY, None)
    if ticket.promoted:
        session[NOTICE_SESSION_KEY] = list(ticket.promoted)
    _print(ticket)
    url = _ticket_url(ticket)
    if request.headers.get("HX-Request"):
        # The same few words for every booking (kiosk.web.prebuilt: rendered once per language).
        response = prebuilt("booking/_result.html", (), {}, {})
        response.headers["HX-Location"] = url
        return response
    return redirect(url, code=303)


def _refusal(error: services.BookingError, **context):
    return render("booking/refused.html", "booking/_refusal.html", status=error.status, error=error, **context)


@bp.post("/booking/book")
def book():
    form = request.form
    member = identified_member() if form.get("as_member") == "1" else None
    try:
        ticket = services.book(
            db.session,
            form.get("service"),
            form.get("slot"),
            rules=_rules(),
            request_key=form.get("request_key"),
            phone=None if member else form.get("phone"),
            member_id=member.id if member else None,
            channel=BookingChannel.KIOSK,
        )
    except services.BookingError as error:
        raw = form.get("service", "")
        service = db.session.get(Service, int(raw)) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None
        return _refusal(error, service=service, slot_key=form.get("slot", ""), notices=_news(form, member))
    return _after_booking(ticket)


def _news(form, member) -> list[str]:
    """The waitlist news of the person a refused or non-booking form names (a new ticket shows
    its own: services.book). The page promises it the next time their card or number is used."""
    return services.take_waitlist_news(db.session, phone=None if member else form.get("phone"), member_id=member.id if member else None, now=_now())


@bp.post("/booking/waitlist")
def waitlist():
    form = request.form
    member = identified_member() if form.get("as_member") == "1" else None
    try:
        entry = services.join_waitlist(
            db.session,
            form.get("service"),
            form.get("slot"),
            rules=_rules(),
            phone=None if member else form.get("phone"),
            member_id=member.id if member else None,
        )
    except services.BookingError as error:
        return _refusal(error, notices=_news(form, member))
    # A finished task: the whole screen (not the keypad's answer box) becomes the result, so the
    # number typed leaves the screen, and a countdown ends the visit (as the ticket page does).
    context = {"entry": entry, "notices": _news(form, member), "next_url": after_visit_url()}
    if request.headers.get("HX-Request"):
        response = make_response(render_template("booking/waitlisted.html", layout=BARE_LAYOUT, **context))
        response.headers["HX-Retarget"] = "#" + MAIN_TARGET
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render("booking/waitlisted.html", **context)


@bp.get("/booking/waitlisted")
def waitlisted_page():
    """The waiting list a member card just joined (booking.scan): the same finished-task page as
    a number's join, shown once; a second visit (or another visitor) goes to the services."""
    joined = session.pop(JOINED_SESSION_KEY, None)
    try:
        entry = services.WaitlistResult(0, str(joined["service"]), datetime.fromisoformat(joined["starts_at"]), int(joined["position"]))
        notices = [str(n) for n in joined.get("notices") or ()]
    except (TypeError, KeyError, ValueError):
        return redirect(url_for("booking.index"))
    return render("booking/waitlisted.html", entry=entry, notices=notices, next_url=after_visit_url())


def _booking_from_token(token: str) -> Booking:
    config = current_app.config
    booking_id = services.read_ticket_token(token[:200], services.ticket_signer(config), config["CENTRE_CODE"])
    return services.get_booking(db.session, booking_id)


@bp.get("/booking/t/<token>")
def ticket(token: str):
    try:
        booking = _booking_from_token(token)
    except services.BookingError as error:
        return render("booking/refused.html", status=error.status, error=error)
    view = services.ticket_view(db.session, booking, today=_today())
    qr = base64.b64encode(qr_svg(token)).decode()
    notices = session.pop(NOTICE_SESSION_KEY, None) or []
    can_cancel = booking.status.value == "booked" and view.cancellable_until is not None and _now() <= view.cancellable_until
    # A ticket is a finished task: it stays for a visible countdown, then the visit ends.
    return render(
        "booking/ticket.html",
        next_url=after_visit_url(),
        ticket=view,
        token=token,
        qr_data=qr,
        notices=notices,
        can_cancel=can_cancel,
        status_label=STATUS_LABELS[view.status],
        today=_today(),
    )


@bp.get("/booking/t/<token>/cancel")
def cancel_confirm(token: str):
    try:
        booking = _booking_from_token(token)
    except services.BookingError as error:
        return render("booking/refused.html", status=error.status, error=error)
    return render("booking/cancel.html", ticket=services.ticket_view(db.session, booking), token=token)


@bp.post("/booking/t/<token>/cancel")
def cancel(token: str):
    try:
        booking = _booking_from_token(token)
        result = services.cancel(db.session, booking.id, rules=_rules())
    except services.BookingError as error:
        return _refusal(error)
    return render("booking/cancelled.html", ticket=result.ticket, next_url=after_visit_url())


@bp.get("/booking/lookup")
def lookup():
    """Look up a ticket: its letter (the service), its digits, then the phone it was booked with."""
    letters = [(s.prefix, s.name) for s in services.list_services(db.session, active_only=True)]
    letter = request.args.get("letter", "")[:1].upper()
    digits = "".join(ch for ch in request.args.get("digits", "") if ch.isdigit())[:4]
    key = request.args.get("key", "")
    if key == "back":
        digits = digits[:-1]
    elif key.isdigit() and len(key) == 1 and len(digits) < 4:
        digits += key
    step = "phone" if request.args.get("next") and letter and digits else ("digits" if letter else "letter")
    return render("booking/lookup.html", "booking/_lookup.html", letters=letters, letter=letter, digits=digits, step=step)


@bp.post("/booking/lookup")
def lookup_submit():
    ticket_no = f"{request.form.get('letter', '')[:1]}{request.form.get('digits', '')[:4]}"
    try:
        booking = services.lookup(db.session, phone=request.form.get("phone"), ticket=ticket_no, now=_now(), zone=_zone())
    except services.BookingError as error:
        return _refusal(error, notices=_news(request.form, None))
    news = _news(request.form, None)
    if news:
        session[NOTICE_SESSION_KEY] = news  # shown on the ticket page it leads to
    config = current_app.config
    url = url_for("booking.ticket", token=services.ticket_token(booking.id, services.ticket_signer(config), config["CENTRE_CODE"]))
    if request.headers.get("HX-Request"):
        response = render("booking/_result.html", "booking/_result.html", ticket=None)
        response.headers["HX-Location"] = url
        return response
    return redirect(url, code=303)


# ---- staff: today's queue ----


def _services_choices() -> list[tuple[str, str]]:
    return [(str(s.id), f"{s.prefix} · {s.name}") for s in services.list_services(db.session, active_only=True)]


def _queue_page(walk_in_form: WalkInForm | None = None, lift_form: LiftBlockForm | None = None, status: int = 200):
    day = _today()
    all_services = services.list_services(db.session)
    bookings = services.queue(db.session, day)
    by_service: dict[int, list[Booking]] = {s.id: [] for s in all_services}
    for b in bookings:
        by_service.setdefault(b.service_id, []).append(b)
    walk_in_form = walk_in_form or WalkInForm(formdata=None)
    walk_in_form.service_id.choices = _services_choices()
    return render(
        "booking/staff_queue.html",
        status=status,
        day=day,
        sections=[(s, by_service.get(s.id, [])) for s in all_services if s.active or by_service.get(s.id)],
        waitlist=services.waitlist_for_day(db.session, day, _zone()),
        providers={s.id: services.active_providers(s) for s in all_services},
        figures=services.today_figures(db.session, day),
        walk_in_form=walk_in_form,
        lift_form=lift_form or LiftBlockForm(formdata=None),
        confirm_form=ConfirmForm(),
        status_labels=STATUS_LABELS,
        channel_labels=CHANNEL_LABELS,
        show_phone=is_admin(),
        desk=session.get("booking_desk", "1"),
    )


@staff_bp.get("/")
def queue():
    return _queue_page()


def _who(booking: Booking, full: bool = False) -> str:
    if booking.member is not None:
        return booking.member.name if full else mask_name(booking.member.name)
    if booking.phone:
        return booking.phone if full else mask_phone(booking.phone)
    return ""


def _desk_action(action):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        result = action()
    except services.BookingError as error:
        flash(str(error.message), "error")
        return redirect(url_for("bookings.queue"))
    return result


@staff_bp.post("/call-next")
def call_next():
    desk = request.form.get("desk", "")
    session["booking_desk"] = desk[:2]

    def act():
        booking = services.call_next(db.session, request.form.get("service"), desk=desk, staff=current_user, rules=_rules())
        flash(_("Calling %(ticket)s to desk %(desk)s.", ticket=booking.ticket, desk=booking.desk), "success")
        return redirect(url_for("bookings.queue"))

    return _desk_action(act)


@staff_bp.post("/<int:booking_id>/recall")
def recall(booking_id: int):
    def act():
        booking = services.recall(db.session, booking_id, staff=current_user, desk=request.form.get("desk") or None)
        flash(_("Calling %(ticket)s to desk %(desk)s.", ticket=booking.ticket, desk=booking.desk), "success")
        return redirect(url_for("bookings.queue"))

    return _desk_action(act)


@staff_bp.post("/<int:booking_id>/served")
def served(booking_id: int):
    def act():
        booking = services.mark_served(
            db.session,
            booking_id,
            staff=current_user,
            rules=_rules(),
            provider_id=request.form.get("provider_id") or None,
            minutes=request.form.get("minutes") or None,
            remote_addr=client_address(),
        )
        flash(_("%(ticket)s served.", ticket=booking.ticket), "success")
        return redirect(url_for("bookings.queue"))

    return _desk_action(act)


@staff_bp.post("/<int:booking_id>/no-show")
def no_show(booking_id: int):
    def act():
        booking = services.mark_no_show(db.session, booking_id, staff=current_user, rules=_rules(), remote_addr=client_address())
        flash(_("%(ticket)s marked as no-show.", ticket=booking.ticket), "success")
        return redirect(url_for("bookings.queue"))

    return _desk_action(act)


@staff_bp.post("/<int:booking_id>/cancel")
def staff_cancel(booking_id: int):
    def act():
        result = services.cancel(
            db.session,
            booking_id,
            rules=_rules(),
            staff=current_user,
            reason=request.form.get("reason", "") or _("Cancelled at the desk"),
            remote_addr=client_address(),
        )
        flash(_("%(ticket)s cancelled.", ticket=result.ticket.ticket), "success")
        if result.promoted_ticket:
            flash(_("The place went to the first on the waiting list: %(ticket)s.", ticket=result.promoted_ticket), "success")
        return redirect(url_for("bookings.queue"))

    return _desk_action(act)


@staff_bp.post("/walk-in")
def walk_in():
    form = WalkInForm()
    form.service_id.choices = _services_choices()
    ticket, status = submit_form(
        form,
        lambda: services.issue_walk_in(
            db.session, form.service_id.data, rules=_rules(), staff=current_user, phone=form.phone.data or "", remote_addr=client_address()
        ),
    )
    if ticket is None:
        return _queue_page(walk_in_form=form, status=status)
    printed = _print(ticket)
    flash(_("Walk-in ticket %(ticket)s issued.", ticket=ticket.label) + (" " + _("Printed.") if printed else ""), "success")
    return redirect(url_for("bookings.queue"))


@staff_bp.post("/lift-block")
def lift_block():
    form = LiftBlockForm()
    lifted, status = submit_form(
        form, lambda: services.lift_block(db.session, phone=form.phone.data, reason=form.reason.data, staff=current_user, remote_addr=client_address())
    )
    if lifted is None:
        return _queue_page(lift_form=form, status=status)
    flash(_("The no-show block was lifted."), "success")
    return redirect(url_for("bookings.queue"))


# ---- the call display (a second screen) ----


@staff_bp.get("/display")
def display():
    return render("booking/display.html", **_calls())


def _calls() -> dict:
    calls = services.now_calling(db.session, _today())
    signature = f"{calls[0].label}-{calls[0].desk}-{calls[0].call_count}-{calls[0].called_at.timestamp():.0f}" if calls else ""
    return {"calls": calls, "signature": signature}


@staff_bp.get("/display/now")
def display_now():
    return render("booking/_calls.html", "booking/_calls.html", **_calls())


# ---- staff: services, schedules, dates ----


@staff_bp.get("/services", endpoint="services")
def services_list():
    return render(
        "booking/staff_services.html",
        services=services.list_services(db.session),
        closures=services.list_closures(db.session, _today()),
        closure_form=ClosureForm(formdata=None),
        confirm_form=ConfirmForm(),
        categories=CATEGORY_LABELS,
    )


def _save_service(service: Service | None, form: ServiceForm) -> Service:
    return services.save_service(
        db.session,
        service,
        name=form.name.data,
        prefix=form.prefix.data,
        category=form.category.data,
        description=form.description.data,
        place=form.place.data,
        icon=form.icon.data,
        duration_minutes=form.duration_minutes.data,
        lead_minutes=form.lead_minutes.data,
        horizon_days=form.horizon_days.data,
        per_person_limit=form.per_person_limit.data,
        cancel_minutes=form.cancel_minutes.data,
        noshow_limit=form.noshow_limit.data,
        noshow_days=form.noshow_days.data,
        block_days=form.block_days.data,
        points_on_serve=form.points_on_serve.data,
        active=bool(form.active.data),
        actor=current_user,
        remote_addr=client_address(),
    )


@staff_bp.route("/services/new", methods=["GET", "POST"])
def service_new():
    form = ServiceForm()
    saved, status = submit_form(form, lambda: _save_service(None, form))
    if saved is not None:
        flash(_("Service saved."), "success")
        return redirect(url_for("bookings.service_detail", service_id=saved.id))
    return render("booking/staff_service_form.html", form=form, service=None, status=status)


def _staff_service(service_id: int) -> Service:
    return db.session.get(Service, service_id) or abort(404)


def _service_detail(service: Service, *, template_form=None, override_form=None, provider_form=None, status: int = 200):
    template_form = template_form or TemplateForm(formdata=None)
    template_form.provider_id.choices = [("", "—")] + [(str(p.id), p.name) for p in service.providers]
    form = ServiceForm(formdata=None, obj=service, category=service.category.value)
    for name in (
        "duration_minutes",
        "lead_minutes",
        "horizon_days",
        "per_person_limit",
        "cancel_minutes",
        "noshow_limit",
        "noshow_days",
        "block_days",
        "points_on_serve",
    ):
        getattr(form, name).data = str(getattr(service, name))
    return render(
        "booking/staff_service.html",
        status=status,
        service=service,
        form=form,
        template_form=template_form,
        override_form=override_form or OverrideForm(formdata=None),
        provider_form=provider_form or ProviderForm(formdata=None),
        overrides=services.list_overrides(db.session, service, _today()),
        confirm_form=ConfirmForm(),
        weekdays=WEEKDAY_LABELS,
        kinds=PROVIDER_KIND_LABELS,
        categories=CATEGORY_LABELS,
    )


@staff_bp.get("/services/<int:service_id>")
def service_detail(service_id: int):
    return _service_detail(_staff_service(service_id))


@staff_bp.post("/services/<int:service_id>")
def service_edit(service_id: int):
    service = _staff_service(service_id)
    form = ServiceForm()
    saved, status = submit_form(form, lambda: _save_service(service, form))
    if saved is None:
        return render("booking/staff_service_form.html", form=form, service=service, status=status)
    flash(_("Service saved."), "success")
    return redirect(url_for("bookings.service_detail", service_id=service_id))


@staff_bp.post("/services/<int:service_id>/templates")
def template_new(service_id: int):
    service = _staff_service(service_id)
    form = TemplateForm()
    form.provider_id.choices = [("", "—")] + [(str(p.id), p.name) for p in service.providers]
    saved, status = submit_form(
        form,
        lambda: services.save_template(
            db.session,
            service,
            weekday=form.weekday.data,
            starts=form.starts.data,
            ends=form.ends.data,
            slot_minutes=form.slot_minutes.data,
            capacity=form.capacity.data,
            provider_id=form.provider_id.data,
            valid_from=form.valid_from.data,
            valid_until=form.valid_until.data,
            actor=current_user,
            remote_addr=client_address(),
        ),
    )
    if saved is None:
        return _service_detail(service, template_form=form, status=status)
    flash(_("Schedule saved. Existing bookings keep their times."), "success")
    return redirect(url_for("bookings.service_detail", service_id=service_id))


@staff_bp.post("/templates/<int:template_id>/delete")
def template_delete(template_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.delete_template(db.session, template_id, actor=current_user, remote_addr=client_address())
    except services.BookingError:
        abort(404)
    flash(_("Schedule removed. Existing bookings keep their times."), "success")
    return redirect(request.referrer or url_for("bookings.services"))


@staff_bp.post("/services/<int:service_id>/overrides")
def override_new(service_id: int):
    service = _staff_service(service_id)
    form = OverrideForm()
    saved, status = submit_form(
        form,
        lambda: services.save_override(
            db.session,
            service,
            day=form.day.data,
            closed=bool(form.closed.data),
            starts=form.starts.data,
            ends=form.ends.data,
            slot_minutes=form.slot_minutes.data,
            capacity=form.capacity.data,
            note=form.note.data,
            actor=current_user,
            remote_addr=client_address(),
        ),
    )
    if saved is None:
        return _service_detail(service, override_form=form, status=status)
    flash(_("Date saved."), "success")
    return redirect(url_for("bookings.service_detail", service_id=service_id))


@staff_bp.post("/overrides/<int:override_id>/delete")
def override_delete(override_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.delete_override(db.session, override_id, actor=current_user, remote_addr=client_address())
    except services.BookingError:
        abort(404)
    return redirect(request.referrer or url_for("bookings.services"))


@staff_bp.post("/services/<int:service_id>/providers")
def provider_new(service_id: int):
    service = _staff_service(service_id)
    form = ProviderForm()
    saved, status = submit_form(
        form, lambda: services.save_provider(db.session, service, name=form.name.data, kind=form.kind.data, actor=current_user, remote_addr=client_address())
    )
    if saved is None:
        return _service_detail(service, provider_form=form, status=status)
    return redirect(url_for("bookings.service_detail", service_id=service_id))


@staff_bp.post("/closures")
def closure_new():
    form = ClosureForm()
    saved, status = submit_form(
        form, lambda: services.save_closure(db.session, day=form.day.data, reason=form.reason.data, actor=current_user, remote_addr=client_address())
    )
    if saved is None:
        return render(
            "booking/staff_services.html",
            status=status,
            services=services.list_services(db.session),
            closures=services.list_closures(db.session, _today()),
            closure_form=form,
            confirm_form=ConfirmForm(),
            categories=CATEGORY_LABELS,
        )
    flash(_("Closure day saved."), "success")
    return redirect(url_for("bookings.services"))


@staff_bp.post("/closures/<int:closure_id>/delete")
def closure_delete(closure_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.delete_closure(db.session, closure_id, actor=current_user, remote_addr=client_address())
    except services.BookingError:
        abort(404)
    return redirect(url_for("bookings.services"))


# ---- reports: month view, volunteer hours, exports ----


def _month() -> str:
    raw = request.args.get("month", "")
    try:
        return datetime.strptime(raw, "%Y-%m").strftime("%Y-%m")
    except ValueError:
        return _today().strftime("%Y-%m")


def _shift(month: str, delta: int) -> str:
    first = datetime.strptime(month, "%Y-%m").date()
    moved = (first + timedelta(days=32)).replace(day=1) if delta > 0 else (first - timedelta(days=1)).replace(day=1)
    return moved.strftime("%Y-%m")


@staff_bp.get("/month")
def month():
    chosen = _month()
    days, rows = services.month_view(db.session, chosen)
    return render("booking/staff_month.html", month=chosen, days=days, rows=rows, previous=_shift(chosen, -1), following=_shift(chosen, 1))


@staff_bp.get("/hours")
def hours():
    chosen = _month()
    return render(
        "booking/staff_hours.html", month=chosen, rows=services.volunteer_hours(db.session, chosen), previous=_shift(chosen, -1), following=_shift(chosen, 1)
    )


def _export_rows(month: str) -> list[list]:
    admin = is_admin()
    rows: list[list] = [[_("Date"), _("Service"), _("Ticket"), _("Time"), _("Name"), _("Mobile number"), _("How"), _("Status"), _("Given by"), _("Minutes")]]
    for b in services.month_bookings(db.session, month):
        rows.append(
            [
                b.day.isoformat(),
                b.service.name,
                b.ticket,
                time_text(b.slot.starts_at) if b.slot else "",
                (b.member.name if admin else mask_name(b.member.name)) if b.member else "",
                _who(b, full=admin) if not b.member else (b.member.phone if admin else mask_phone(b.member.phone)),
                str(CHANNEL_LABELS[b.channel]),
                str(STATUS_LABELS[b.status]),
                b.provider.name if b.provider else "",
                b.served_minutes or "",
            ]
        )
    return rows


def _export(kind: str):
    chosen = _month()
    rows = _export_rows(chosen)
    services.audit_export(db.session, current_user, "booking.export", f"{kind} month={chosen} phones={'full' if is_admin() else 'masked'}", client_address())
    name = f"bookings-{chosen}.{kind}"
    return csv_download(rows, name) if kind == "csv" else xlsx_download(rows, name, "bookings")


@staff_bp.get("/export.csv")
def export_csv():
    return _export("csv")


@staff_bp.get("/export.xlsx")
def export_xlsx():
    return _export("xlsx")


@staff_bp.get("/hours.csv")
def hours_csv():
    chosen = _month()
    rows: list[list] = [[_("Month"), _("Service"), _("Given by"), _("People served"), _("Hours")]]
    rows += [[chosen, r.service, r.provider, r.people, r.hours] for r in services.volunteer_hours(db.session, chosen)]
    services.audit_export(db.session, current_user, "booking.hours_export", f"csv month={chosen}", client_address())
    return csv_download(rows, f"volunteer-hours-{chosen}.csv")
