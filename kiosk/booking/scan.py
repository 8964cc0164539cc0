"""Scanner recognisers for booking at the kiosk.

- A ticket QR (``B1.<centre>.<booking>.<sig>``) held to the scanner opens that ticket (look up,
  cancel). A ticket of another centre is refused with its own message.
- A member card scanned on the booking keypad screen books the chosen slot for the member
  (priority 11: above check-in's card recogniser, which only claims cards on a check-in screen,
  and 我的积分); on the waiting list's screen (a full slot) it puts the member on its waiting list.
"""

from __future__ import annotations

import time

from kiosk.booking import services
from kiosk.booking.models import BookingChannel
from kiosk.i18n import _l
from kiosk.members.scan import member_signer
from kiosk.members.services import looks_like_card, resolve_card
from kiosk.scan.services import Recogniser, ScanOutcome

# The slot on the keypad screen: {"service": id, "slot": key, "key": request key, "at": unix time,
# "waitlist": True on the waiting list's screen}.
PENDING_SESSION_KEY = "booking_pending"
# Waitlist places to tell on the next ticket page (services.take_waitlist_news, TicketView.promoted).
NOTICE_SESSION_KEY = "booking_notice"
PENDING_SECONDS = 300
# The waiting list a member card just joined, for the result page it leads to (read once).
JOINED_SESSION_KEY = "booking_joined"


def pending_slot(visitor) -> dict | None:
    pending = visitor.get(PENDING_SESSION_KEY)
    if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        return None
    return pending


def recognise_ticket(session, code, context):
    if not services.looks_like_ticket(code):
        return None
    config = context.config
    booking_id = services.read_ticket_token(code, services.ticket_signer(config), config["CENTRE_CODE"])
    services.get_booking(session, booking_id)  # unknown_ticket (404) for a ticket of a reset database
    return ScanOutcome(kind="booking-ticket", url_values={"token": code}, message=_l("Opening your ticket…"))


def recognise_card_for_booking(session, code, context):
    if not looks_like_card(code):
        return None
    pending = pending_slot(context.visitor)
    if pending is None:
        return None
    config = context.config
    member = resolve_card(session, code, member_signer(config), config["CENTRE_CODE"])
    rules = services.rules_from_config(config)
    try:
        if pending.get("waitlist"):
            return _join_waitlist(session, pending, member.id, rules)
        ticket = services.book(
            session,
            pending.get("service"),
            pending.get("slot"),
            rules=rules,
            request_key=pending.get("key"),
            member_id=member.id,
            channel=BookingChannel.KIOSK,
        )
    except services.BookingError as error:
        # A refusal tells the member's waitlist news as the keypad's refusal tells a number's
        # (views._news): "one booking per person" makes sense only with the place the list gave.
        error.notices = tuple(services.take_waitlist_news(session, member_id=member.id))
        raise
    token = services.ticket_token(ticket.booking_id, services.ticket_signer(config), config["CENTRE_CODE"])
    return ScanOutcome(
        kind="booking-card",
        url_values={"token": token},
        message=_l("Booked: %(ticket)s", ticket=ticket.label),
        # A waitlist place this booking told of (services.book) shows on the ticket page.
        visitor={PENDING_SESSION_KEY: None, NOTICE_SESSION_KEY: list(ticket.promoted)},
    )


def _join_waitlist(session, pending: dict, member_id: int, rules: services.BookingRules) -> ScanOutcome:
    entry = services.join_waitlist(session, pending.get("service"), pending.get("slot"), rules=rules, member_id=member_id)
    # A finished task, as a number's join (views.waitlist): the result page with its countdown,
    # not a toast that left the keypad screen (and the member's turn) open. The page reads the
    # result from the session once (views.waitlisted_page).
    joined = {
        "position": entry.position,
        "service": entry.service_name,
        "starts_at": entry.starts_at.isoformat(),
        "notices": services.take_waitlist_news(session, member_id=member_id),
    }
    return ScanOutcome(
        kind="booking-waitlist",
        message=_l("You are number %(n)d on the waiting list.", n=entry.position),
        url_values={},
        endpoint="booking.waitlisted_page",
        visitor={PENDING_SESSION_KEY: None, JOINED_SESSION_KEY: joined},
    )


CARD_FOR_BOOKING = Recogniser("booking-card", recognise_card_for_booking, priority=11, endpoint="booking.ticket")
TICKET = Recogniser("booking-ticket", recognise_ticket, priority=5, endpoint="booking.ticket")
