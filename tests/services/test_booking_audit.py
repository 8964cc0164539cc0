"""Issue 11's acceptance, checked again by an independent audit (session 8): what the first tests
left out or asserted more weakly than the issue says. The fixtures are test_booking.py's
(Wednesday haircut, 20-minute slots, 2 chairs; Monday 30 November 2026 08:00 in Hangzhou)."""

from __future__ import annotations

import functools
from base64 import b64decode
from datetime import timedelta

import pytest
from nacl.public import PrivateKey, SealedBox
from sqlalchemy import func, select

from kiosk.booking import services
from kiosk.booking.models import Booking, Slot
from kiosk.booking.services import SlotFullError
from kiosk.members.services import register_member
from kiosk.points.models import PointsEntry
from kiosk.points.services import balance
from kiosk.sync.models import OutboxEvent, SyncState
from kiosk.sync.protocol import new_box_keypair
from tests.services import test_booking
from tests.services.test_booking import MONDAY, NINE, RULES, WEDNESDAY, ZONE, _racer, book, local, race

# test_booking.py's fixtures, the same schedule (its module is helper A's to change).
staff = pytest.fixture(test_booking.staff.__wrapped__)
haircut = pytest.fixture(test_booking.haircut.__wrapped__)
legal = pytest.fixture(test_booking.legal.__wrapped__)


def _fresh_slots(session, service, count):
    """``count`` slot keys, each in its own slot, from the Wednesdays within the horizon."""
    keys = []
    for week in range(3):
        day = WEDNESDAY + timedelta(days=7 * week)
        keys += [(day, slot.key(ZONE)) for slot in services.day_slots(session, service, day, ZONE)]
    assert len(keys) >= count
    return keys[:count]


# ---- races, repeated 20 times (the issue: "Races, repeated 20 times in the suite") ----


def test_fifty_racing_for_the_last_place_twenty_times_one_wins_and_49_are_offered_the_next_free_slots(app, session, haircut):
    """test_booking.py races 50 for the last place once (and 8 for two chairs 20 times): here
    the 50 race 20 times, each round for the last chair of a fresh slot. Every loser is told
    the slot is full and offered the next free slot after it (never the full one)."""
    for round_, (day, key) in enumerate(_fresh_slots(session, haircut, 20)):
        book(session, haircut, key, f"1370000{round_:04d}", now=local(day, 7))  # one of the two chairs
        outcomes = race(app, [_racer(haircut.id, key, f"13{round_:02d}{i:07d}", local(day, 7)) for i in range(50)])
        wins = [o for o in outcomes if isinstance(o, services.TicketView)]
        full = [o for o in outcomes if isinstance(o, SlotFullError)]
        assert (len(wins), len(full)) == (1, 49), (round_, [getattr(o, "code", o) for o in outcomes])
        starts = services.parse_slot_key(key, ZONE)
        for refusal in full:
            assert (refusal.code, refusal.status) == ("slot_full", 409)  # 该时段已约满 over HTTP: tests/web/test_booking_audit.py
            assert refusal.alternatives, (round_, "no next free slot offered")
            assert all(a.starts_at > starts and a.free > 0 for a in refusal.alternatives), round_
        session.rollback()  # a fresh read transaction sees the threads' commits
        assert session.scalar(select(Slot.booked).where(Slot.starts_at == starts)) == 2
    assert session.scalar(select(func.max(Slot.booked))) == 2
    assert session.scalar(select(func.count()).select_from(Booking)) == 40
    assert session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "booking.created")) == 40


def test_a_double_tap_races_twenty_times_and_books_once_each_time(app, session, haircut):
    """Ten taps with one request key, all released at once, 20 rounds: one booking a round,
    and every tap answered with that booking's ticket."""
    for round_, (day, key) in enumerate(_fresh_slots(session, haircut, 20)):
        request_key, service_id, phone, now = services.new_request_key(), haircut.id, f"1380000{round_:04d}", local(day, 7)
        tap = functools.partial(services.book, service_id=service_id, slot_key=key, rules=RULES, request_key=request_key, phone=phone, now=now)
        taps = race(app, [lambda s, tap=tap: tap(s)] * 10)
        assert all(isinstance(t, services.TicketView) for t in taps), (round_, [getattr(t, "code", t) for t in taps])
        assert len({t.booking_id for t in taps}) == 1, round_
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Booking)) == 20


# ---- outbox events are pseudonymised, every kind ----


def test_every_booking_event_seals_the_person_and_names_nobody_once_enrolled(session, haircut, legal, staff):
    """test_booking.py checks booking.created only; the issue asks it of created, cancelled,
    served and no-show (and the waitlist's event goes out too). Once the kiosk knows the hub's
    key no event holds a phone or a name: only the number sealed to the hub."""
    private, public = new_box_keypair()
    session.merge(SyncState(id=1, hub_public_key=public))
    session.commit()
    member = register_member(session, name="张建华", phone="13900000001", community="", age_band="70-79", consent=True, consent_version="t", actor=None)
    session.commit()
    guest, waiting = "13800000002", "13800000003"
    a = book(session, haircut, NINE, member.phone)
    book(session, haircut, NINE, guest)
    services.join_waitlist(session, haircut.id, NINE, rules=RULES, phone=waiting, now=MONDAY)
    services.cancel(session, a.booking_id, rules=RULES, now=MONDAY)  # the waiting guest gets the place
    served = book(session, legal, "202612011400", member.phone)
    services.mark_served(session, served.booking_id, staff=staff, rules=RULES, now=local(WEDNESDAY - timedelta(days=1), 14, 30))
    missed = book(session, haircut, "202612021000", "13800000004")
    services.mark_no_show(session, missed.booking_id, staff=staff, rules=RULES, now=local(WEDNESDAY, 10, 30))

    events = list(session.scalars(select(OutboxEvent).where(OutboxEvent.type.like("booking.%")).order_by(OutboxEvent.id)))
    kinds = {e.type for e in events}
    assert kinds == {"booking.created", "booking.cancelled", "booking.waitlisted", "booking.served", "booking.no_show"}, kinds
    box = SealedBox(PrivateKey(b64decode(private)))
    phones = {member.phone, guest, waiting, "13800000004"}
    for event in events:
        text = repr(event.payload)
        assert not any(p in text for p in phones) and "张建华" not in text and "张*华" not in text, (event.type, event.payload)
        assert "person_phone" not in event.payload, event.type
        assert box.decrypt(b64decode(event.payload["person_sealed"])).decode() in phones, event.type
    cancelled = next(e for e in events if e.type == "booking.cancelled")
    assert box.decrypt(b64decode(cancelled.payload["person_sealed"])).decode() == member.phone


# ---- members and points ----


def test_a_member_earns_no_points_for_booking_and_the_services_points_when_served(session, haircut, legal, staff):
    """The issue: members earn no points for booking; serving can award points (configurable
    per service: the haircut gives 2, the legal advice none)."""
    member = register_member(session, name="王秀英", phone="13900000002", community="", age_band="60-69", consent=True, consent_version="t", actor=None)
    session.commit()
    entries = session.scalar(select(func.count()).select_from(PointsEntry))
    haircut_ticket = book(session, haircut, NINE, member.phone)
    legal_ticket = book(session, legal, "202612011400", member.phone)
    assert balance(session, member.id) == 0
    assert session.scalar(select(func.count()).select_from(PointsEntry)) == entries
    services.mark_served(session, legal_ticket.booking_id, staff=staff, rules=RULES, now=local(WEDNESDAY - timedelta(days=1), 14, 30))
    assert balance(session, member.id) == 0  # points_on_serve 0: nothing
    services.mark_served(session, haircut_ticket.booking_id, staff=staff, rules=RULES, now=local(WEDNESDAY, 9, 20))
    assert balance(session, member.id) == 2


# ---- the no-show rule's window ----


def test_no_shows_older_than_the_window_do_not_block(session, haircut, staff):
    """ "3 no-shows in 90 days": the block counts only no-shows in the last noshow_days. Three
    no-shows over 98 days block nobody at the third (the first is out of the window); a fourth
    within the window blocks."""
    days = [WEDNESDAY, WEDNESDAY + timedelta(days=49), WEDNESDAY + timedelta(days=98), WEDNESDAY + timedelta(days=105)]
    for day in days[:3]:
        ticket = book(session, haircut, day.strftime("%Y%m%d") + "0900", now=local(day, 7))
        services.mark_no_show(session, ticket.booking_id, staff=staff, rules=RULES, now=local(day, 9, 30))
    after_third = local(days[2], 12)
    assert services.blocked_until(session, "p:13800000001", haircut, after_third) is None
    ticket = book(session, haircut, days[3].strftime("%Y%m%d") + "0900", now=after_third)
    services.mark_no_show(session, ticket.booking_id, staff=staff, rules=RULES, now=local(days[3], 9, 30))
    assert services.blocked_until(session, "p:13800000001", haircut, local(days[3], 12)) is not None
