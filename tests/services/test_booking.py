"""Booking free services: schedules, every booking rule, the waitlist, tickets, the queue, races."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from kiosk.booking import services
from kiosk.booking.models import Booking, BookingChannel, BookingStatus, ClosureDay, Slot, WaitlistEntry
from kiosk.booking.services import BookingError, SlotFullError
from kiosk.extensions import db
from kiosk.members.services import register_member
from kiosk.points.services import balance
from kiosk.signing import TokenSigner
from kiosk.staff.models import AuditEntry
from kiosk.sync.models import OutboxEvent

ZONE = ZoneInfo("Asia/Shanghai")
RULES = services.BookingRules(zone=ZONE, device_id="kiosk-1", district_key="district", centre_code="XH-CY-CY1")
# Monday 30 November 2026, 08:00 in Hangzhou; the haircut is on Wednesdays.
MONDAY = datetime(2026, 11, 30, 8, 0, tzinfo=ZONE)
WEDNESDAY = date(2026, 12, 2)
NINE = "202612020900"
SIGNER = TokenSigner("test-signing-key-not-for-production", purpose=services.TICKET_PURPOSE)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


@pytest.fixture
def staff(make_staff):
    return make_staff()


@pytest.fixture
def haircut(session, staff):
    service = services.save_service(session, None, name="理发", prefix="A", category="haircut", place="嘉荷社区 一楼", actor=staff, points_on_serve=2)
    provider = services.save_provider(session, service, name="嘉荷社区理发志愿队", kind="volunteer", actor=staff)
    services.save_template(session, service, weekday=2, starts="09:00", ends="11:30", slot_minutes=20, capacity=2, provider_id=str(provider.id), actor=staff)
    return service


@pytest.fixture
def legal(session, staff):
    service = services.save_service(session, None, name="法律咨询", prefix="C", category="legal", actor=staff)
    services.save_template(session, service, weekday=1, starts="14:00", ends="17:00", slot_minutes=30, capacity=1, actor=staff)
    return service


def book(session, service, slot_key=NINE, phone="13800000001", *, now=MONDAY, key=None, **kwargs):
    return services.book(session, service.id, slot_key, rules=RULES, request_key=key or services.new_request_key(), phone=phone, now=now, **kwargs)


def counts(session) -> tuple[int, int, int, int]:
    session.rollback()  # a fresh read transaction sees what the other threads committed
    return tuple(session.scalar(select(func.count()).select_from(t)) for t in (Booking, Slot, OutboxEvent, WaitlistEntry))  # type: ignore[return-value]


# ---- slots ----


def test_the_weekly_template_makes_twenty_minute_slots_with_two_chairs(session, haircut):
    slots = services.day_slots(session, haircut, WEDNESDAY, ZONE)
    assert [s.starts_at.astimezone(ZONE).strftime("%H:%M") for s in slots] == ["09:00", "09:20", "09:40", "10:00", "10:20", "10:40", "11:00"]
    assert {s.capacity for s in slots} == {2} and {s.free for s in slots} == {2}
    assert services.day_slots(session, haircut, WEDNESDAY + timedelta(days=1), ZONE) == []


def test_availability_shows_free_places_per_day_up_to_the_horizon(session, haircut):
    days = services.availability(session, haircut, MONDAY, ZONE)
    assert days[0].day == MONDAY.date() and len(days) == haircut.horizon_days + 1
    wednesday = next(d for d in days if d.day == WEDNESDAY)
    assert wednesday.free == 14 and not wednesday.closed
    book(session, haircut)
    wednesday = next(d for d in services.availability(session, haircut, MONDAY, ZONE) if d.day == WEDNESDAY)
    assert wednesday.free == 13


def test_a_closure_day_and_a_closed_date_have_no_slots(session, haircut, staff):
    services.save_closure(session, day=WEDNESDAY.isoformat(), reason="元旦", actor=staff)
    day = next(d for d in services.availability(session, haircut, MONDAY, ZONE) if d.day == WEDNESDAY)
    assert day.closed and day.slots == [] and day.free == 0
    with pytest.raises(BookingError) as refused:
        book(session, haircut)
    assert refused.value.code == "not_a_slot" and refused.value.status == 404
    next_week = WEDNESDAY + timedelta(days=7)
    services.save_override(session, haircut, day=next_week.isoformat(), closed=True, note="志愿者外出", actor=staff)
    assert services.day_slots(session, haircut, next_week, ZONE) == []


def test_an_override_changes_the_hours_of_one_date(session, haircut, staff):
    services.save_override(session, haircut, day=WEDNESDAY.isoformat(), closed=False, starts="14:00", ends="15:00", capacity="3", actor=staff)
    slots = services.day_slots(session, haircut, WEDNESDAY, ZONE)
    assert [(s.starts_at.astimezone(ZONE).strftime("%H:%M"), s.capacity) for s in slots] == [("14:00", 3), ("14:20", 3), ("14:40", 3)]
    assert len(services.day_slots(session, haircut, WEDNESDAY + timedelta(days=7), ZONE)) == 7


# ---- booking and its rules ----


def test_a_booking_gets_a_ticket_number_per_service_and_day_and_people_ahead(session, haircut, legal):
    first = book(session, haircut, "202612020920", "13800000001")
    second = book(session, haircut, NINE, "13800000002")
    other = book(session, legal, "202612011400", "13800000001")
    assert (first.ticket, second.ticket, other.ticket) == ("A001", "A002", "C001")
    assert first.label == "理发 A001"
    # The queue follows the slots: the 9:00 booking is ahead of the 9:20 one. book() counts the
    # people ahead only for a ticket of today (the only one that shows them); the ticket page counts.
    assert (first.people_ahead, second.people_ahead) == (None, None)
    assert services.ticket_view(session, session.get(Booking, first.booking_id)).people_ahead == 1
    assert first.masked_who == "138****0001"
    event = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "booking.created")).first()
    # Before the kiosk is enrolled with a hub the number waits on this kiosk, to be sealed to the
    # hub's key at push (kiosk.sync.outbox); it never goes out as it is (tests/sync).
    assert event.payload["person_phone"] == "13800000001" and "person" not in event.payload
    assert event.payload["category"] == "haircut" and event.payload["channel"] == "kiosk"


def test_a_phone_that_belongs_to_a_member_books_as_the_member(session, haircut):
    member = register_member(session, name="张建华", phone="13900000001", community="", age_band="60-69", consent=True, consent_version="t", actor=None)
    session.commit()
    ticket = book(session, haircut, phone="139 0000 0001")
    assert ticket.masked_who == "张*华"
    booking = session.get(Booking, ticket.booking_id)
    assert booking.member_id == member.id and booking.phone is None and booking.person_key == f"m:{member.id}"


def test_lead_time(session, haircut):
    at_845 = local(WEDNESDAY, 8, 45)
    with pytest.raises(BookingError) as refused:
        book(session, haircut, NINE, now=at_845)
    assert refused.value.code == "too_soon"
    assert book(session, haircut, "202612020920", now=at_845).ticket == "A001"


def test_a_slot_in_the_past_is_refused_and_nothing_is_written(session, haircut):
    before = counts(session)
    with pytest.raises(BookingError) as refused:
        book(session, haircut, NINE, now=local(WEDNESDAY, 9, 5))
    assert refused.value.code == "slot_past" and refused.value.status == 409
    assert counts(session) == before


def test_horizon(session, haircut):
    three_weeks = (WEDNESDAY + timedelta(days=21)).strftime("%Y%m%d") + "0900"
    with pytest.raises(BookingError) as refused:
        book(session, haircut, three_weeks)
    assert refused.value.code == "too_far"
    two_weeks = (WEDNESDAY + timedelta(days=7)).strftime("%Y%m%d") + "0900"
    assert book(session, haircut, two_weeks).ticket == "A001"


def test_per_person_limit(session, haircut, legal):
    book(session, haircut, NINE, "13800000001")
    with pytest.raises(BookingError) as refused:
        book(session, haircut, "202612021000", "13800000001")
    assert refused.value.code == "limit_reached"
    assert "理发" in str(refused.value.message)
    # Another service is another limit; another person is another person.
    book(session, legal, "202612011400", "13800000001")
    book(session, haircut, "202612021000", "13800000002")


def test_the_same_person_cannot_take_both_chairs_of_a_slot(session, haircut, staff):
    services.save_service(session, haircut, name="理发", prefix="A", category="haircut", per_person_limit="3", actor=staff)
    book(session, haircut, NINE, "13800000001")
    with pytest.raises(BookingError) as refused:
        book(session, haircut, NINE, "13800000001")
    assert refused.value.code == "already_booked"


def test_a_double_tap_or_a_retry_books_once(session, haircut):
    first = book(session, haircut, key="same-key-123456")
    again = book(session, haircut, key="same-key-123456")
    assert again.booking_id == first.booking_id and again.ticket == "A001"
    assert counts(session)[0] == 1
    with pytest.raises(BookingError) as refused:
        book(session, haircut, phone="13800000009", key="same-key-123456")
    assert refused.value.code == "bad_request_key"


def test_a_template_change_does_not_move_existing_bookings(session, haircut, staff):
    ticket = book(session, haircut, "202612021000")
    for template in list(haircut.templates):
        services.delete_template(session, template.id, actor=staff)
    services.save_template(session, haircut, weekday=3, starts="14:00", ends="16:00", slot_minutes=30, capacity=1, actor=staff)
    booking = session.get(Booking, ticket.booking_id)
    session.refresh(booking)
    assert booking.slot.starts_at == local(WEDNESDAY, 10) and booking.status == BookingStatus.BOOKED
    assert [b.ticket for b in services.queue(session, WEDNESDAY)] == ["A001"]
    # New bookings follow the new schedule; the old Wednesday times are no longer offered.
    assert services.day_slots(session, haircut, WEDNESDAY, ZONE) == []
    with pytest.raises(BookingError):
        book(session, haircut, "202612021020", "13800000002")
    assert book(session, haircut, "202612031400", "13800000002").ticket == "A001"


def test_a_retry_after_the_lead_time_ran_out_still_gets_its_ticket(session, haircut):
    """The request key is looked at before the slot's rules: a confirmation retried once the
    slot is too close to book shows the ticket it made, not a refusal."""
    first = book(session, haircut, NINE, key="retry-late-0001")
    again = book(session, haircut, NINE, key="retry-late-0001", now=local(WEDNESDAY, 8, 50))
    assert again.booking_id == first.booking_id and counts(session)[0] == 1


def test_people_ahead_counted_in_the_booking_match_the_queue(session, haircut, staff):
    """book() counts the people ahead inside its unit of work, before its own row exists, for
    the number the counter is about to give, for a ticket of that day. Shown to fail without the
    equal-time clause (the second 9:00 booking would see 0 ahead)."""
    early = local(WEDNESDAY, 7)
    tickets = [
        book(session, haircut, "202612020920", "13800000001", now=early),
        book(session, haircut, NINE, "13800000002", now=early),
        book(session, haircut, NINE, "13800000003", now=early),
        book(session, haircut, "202612020940", "13800000004", now=early),
    ]
    services.issue_walk_in(session, haircut.id, phone="", staff=staff, rules=RULES, now=local(WEDNESDAY, 9, 10))
    tickets.append(book(session, haircut, "202612021000", "13800000005", now=local(WEDNESDAY, 9, 11)))
    assert [t.people_ahead for t in tickets] == [0, 0, 1, 3, 5]
    # The queue as it then stands (the 9:00 ones, the walk-in at 9:10, then 9:20 …).
    assert [services.people_ahead(session, session.get(Booking, t.booking_id)) for t in tickets] == [3, 0, 1, 4, 5]


def test_a_slot_row_follows_the_schedule_capacity_when_a_place_is_taken(session, haircut, staff):
    """The place is taken in one statement (created with the slot's row, or one more if one is
    free); the row's capacity follows the schedule but never drops below what is booked, and a
    full slot changes nothing. Shown to fail without the statement's WHERE (the fourth booking
    breaks the not_overbooked check)."""
    book(session, haircut, NINE, "13800000001")
    book(session, haircut, NINE, "13800000002")
    with pytest.raises(SlotFullError):
        book(session, haircut, NINE, "13800000003")
    services.save_override(session, haircut, day=WEDNESDAY.isoformat(), closed=False, starts="09:00", ends="11:30", capacity="3", actor=staff)
    book(session, haircut, NINE, "13800000003")

    def row():
        session.rollback()
        return session.execute(select(Slot.capacity, Slot.booked).where(Slot.starts_at == local(WEDNESDAY, 9))).one()

    assert tuple(row()) == (3, 3)
    services.save_override(session, haircut, day=WEDNESDAY.isoformat(), closed=False, starts="09:00", ends="11:30", capacity="1", actor=staff)
    with pytest.raises(SlotFullError):
        book(session, haircut, NINE, "13800000004")
    assert tuple(row()) == (3, 3)


def test_the_keypad_path_writes_the_rows_sqlalchemy_writes(session, haircut):
    """book() writes in SQLite's own words (kiosk.booking.services._raw): its booking, slot and
    event rows must be stored exactly as SQLAlchemy stores the same values (dates, UTC times,
    enums, JSON), or the queue, sync and exports would read them differently. Each row is
    written again through Core with the values read back, in a transaction rolled back, and
    the two compared column by column. Shown to fail with times written by isoformat()."""
    from sqlalchemy import insert

    ticket = book(session, haircut, NINE, "13800000001", key="rows-key-00001")
    session.rollback()
    booking = session.get(Booking, ticket.booking_id)
    event = session.scalar(select(OutboxEvent).where(OutboxEvent.type == "booking.created"))
    slot = session.get(Slot, booking.slot_id)
    tables = {
        "booking": (booking, {"request_key": "rows-key-twin", "ticket_seq": 99, "ticket": "A099"}),
        "outbox_event": (event, {"event_id": "twin"}),
        "service_slot": (slot, {"starts_at": slot.starts_at + timedelta(days=7)}),
    }
    with db.engine.connect() as connection:
        for table, (obj, changed) in tables.items():
            columns = obj.__table__.c
            values = {c.name: getattr(obj, c.key) for c in columns if c.name != "id"} | changed
            twin = connection.execute(insert(obj.__table__).values(**values).returning(columns.id)).scalar_one()
            names = [c.name for c in columns if c.name not in changed and c.name != "id"]
            ours, theirs = (connection.exec_driver_sql(f"SELECT {', '.join(names)} FROM {table} WHERE id = ?", (i,)).one() for i in (obj.id, twin))
            assert tuple(ours) == tuple(theirs), (table, names)
        connection.rollback()


# ---- cancelling, the waitlist ----


def test_cancellation_window(session, haircut):
    ticket = book(session, haircut, NINE)
    with pytest.raises(BookingError) as refused:
        services.cancel(session, ticket.booking_id, rules=RULES, now=local(WEDNESDAY, 8, 1))
    assert refused.value.code == "cancel_too_late"
    result = services.cancel(session, ticket.booking_id, rules=RULES, now=local(WEDNESDAY, 7, 59))
    assert result.ticket.status == BookingStatus.CANCELLED
    assert session.scalar(select(Slot.booked).where(Slot.id == session.get(Booking, ticket.booking_id).slot_id)) == 0
    before = counts(session)
    with pytest.raises(BookingError) as again:
        services.cancel(session, ticket.booking_id, rules=RULES, now=local(WEDNESDAY, 7, 59))
    assert again.value.code == "already_cancelled" and again.value.status == 409
    assert counts(session) == before


def test_a_cancelled_place_goes_to_the_first_on_the_waitlist(session, haircut):
    a = book(session, haircut, NINE, "13800000001")
    book(session, haircut, NINE, "13800000002")
    with pytest.raises(SlotFullError) as full:
        book(session, haircut, NINE, "13800000003")
    assert full.value.code == "slot_full" and full.value.alternatives[0].starts_at == local(WEDNESDAY, 9, 20)
    first = services.join_waitlist(session, haircut.id, NINE, rules=RULES, phone="13800000003", now=MONDAY)
    second = services.join_waitlist(session, haircut.id, NINE, rules=RULES, phone="13800000004", now=MONDAY)
    assert (first.position, second.position) == (1, 2)
    with pytest.raises(BookingError) as twice:
        services.join_waitlist(session, haircut.id, NINE, rules=RULES, phone="13800000003", now=MONDAY)
    assert twice.value.code == "already_waiting"
    result = services.cancel(session, a.booking_id, rules=RULES, now=MONDAY)
    assert result.promoted_ticket == "A003"
    promoted = session.scalar(select(Booking).where(Booking.phone == "13800000003"))
    assert promoted.channel == BookingChannel.WAITLIST and promoted.slot.booked == 2
    entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.phone == "13800000003"))
    assert entry.status.value == "promoted" and entry.notified_at is None


def test_the_promotion_is_shown_at_the_next_booking(session, haircut, legal):
    a = book(session, haircut, NINE, "13800000001")
    book(session, haircut, NINE, "13800000002")
    services.join_waitlist(session, haircut.id, NINE, rules=RULES, phone="13800000003", now=MONDAY)
    services.cancel(session, a.booking_id, rules=RULES, now=MONDAY)
    next_time = book(session, legal, "202612011400", "13800000003")
    assert next_time.promoted == ("理发 A003",)
    assert book(session, legal, "202612011430", "13800000005").promoted == ()


def test_waitlist_only_for_a_full_slot(session, haircut):
    with pytest.raises(BookingError) as refused:
        services.join_waitlist(session, haircut.id, NINE, rules=RULES, phone="13800000003", now=MONDAY)
    assert refused.value.code == "slot_has_places"


# ---- no-shows ----


def _no_show_three_times(session, haircut, staff, phone="13800000001"):
    for week in range(3):
        day = WEDNESDAY + timedelta(days=7 * week)
        ticket = book(session, haircut, day.strftime("%Y%m%d") + "0900", phone, now=local(day, 7))
        services.mark_no_show(session, ticket.booking_id, staff=staff, rules=RULES, now=local(day, 9, 30))
    return WEDNESDAY + timedelta(days=14)


def test_three_no_shows_block_kiosk_booking_and_staff_can_lift_it(session, haircut, staff):
    last = _no_show_three_times(session, haircut, staff)
    later = local(last, 12)
    slot = (last + timedelta(days=7)).strftime("%Y%m%d") + "0900"
    with pytest.raises(BookingError) as refused:
        book(session, haircut, slot, now=later)
    assert refused.value.code == "blocked" and refused.value.status == 403
    # The desk may still book for the person.
    assert book(session, haircut, slot, now=later, channel=BookingChannel.STAFF, staff=staff).ticket == "A001"
    assert services.blocked_until(session, "p:13800000001", haircut, later) is not None
    with pytest.raises(BookingError):
        services.lift_block(session, phone="13800000001", reason="  ", staff=staff, now=later)
    services.lift_block(session, phone="13800000001", reason="家中有事，已说明", staff=staff, now=later)
    assert services.blocked_until(session, "p:13800000001", haircut, later + timedelta(minutes=1)) is None
    audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "booking.block_lift"))
    assert audit.detail == "家中有事，已说明" and audit.actor_id == staff.id


def test_the_block_ends_after_block_days(session, haircut, staff):
    last = _no_show_three_times(session, haircut, staff)
    assert services.blocked_until(session, "p:13800000001", haircut, local(last, 12)) is not None
    assert services.blocked_until(session, "p:13800000001", haircut, local(last + timedelta(days=31), 12)) is None


# ---- bad input writes nothing ----


@pytest.mark.parametrize(
    ("slot_key", "phone", "code", "status"),
    [
        ("202612011400", "13800000001", "not_a_slot", 404),  # the legal service's Tuesday slot
        ("2026-12-02 09:00", "13800000001", "bad_slot", 400),
        ("202613020900", "13800000001", "bad_slot", 400),
        (NINE, "1380000", "phone_wrong_length", 422),
        (NINE, "12345678901", "phone_bad_format", 422),
        (NINE, "", "phone_empty", 422),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(session, haircut, legal, slot_key, phone, code, status):
    before = counts(session)
    with pytest.raises(BookingError) as refused:
        book(session, haircut, slot_key, phone)
    assert (refused.value.code, refused.value.status) == (code, status)
    assert counts(session) == before


def test_tickets_are_looked_up_by_number_and_phone(session, haircut):
    ticket = book(session, haircut, NINE, "13800000001")
    assert services.lookup(session, phone="13800000001", ticket="a1", now=MONDAY, zone=ZONE).id == ticket.booking_id
    assert services.lookup(session, phone="13800000001", ticket="Ａ００１", now=MONDAY, zone=ZONE).id == ticket.booking_id
    for phone, number, code in (("13800000002", "A001", "unknown_ticket"), ("13800000001", "A002", "unknown_ticket"), ("13800000001", "12", "bad_ticket")):
        with pytest.raises(BookingError) as refused:
            services.lookup(session, phone=phone, ticket=number, now=MONDAY, zone=ZONE)
        assert refused.value.code == code


def test_ticket_tokens(session, haircut):
    ticket = book(session, haircut)
    token = services.ticket_token(ticket.booking_id, SIGNER, "XH-CY-CY1")
    assert services.read_ticket_token(token, SIGNER, "XH-CY-CY1") == ticket.booking_id
    foreign = services.ticket_token(ticket.booking_id, SIGNER, "XH-LY-HL")
    for bad, code in ((foreign, "wrong_centre"), (token[:-2] + "xx", "ticket_tampered"), ("B1.nonsense", "ticket_invalid")):
        with pytest.raises(BookingError) as refused:
            services.read_ticket_token(bad, SIGNER, "XH-CY-CY1")
        assert refused.value.code == code


# ---- the desk ----


def test_the_queue_calls_in_slot_order_with_walk_ins_from_the_same_numbering(session, haircut, staff):
    member = register_member(session, name="王秀英", phone="13900000002", community="", age_band="60-69", consent=True, consent_version="t", actor=None)
    session.commit()
    late = book(session, haircut, "202612021000", "13800000001")
    early = book(session, haircut, NINE, "13900000002")
    walk_in = services.issue_walk_in(session, haircut.id, rules=RULES, staff=staff, now=local(WEDNESDAY, 9, 30))
    assert (late.ticket, early.ticket, walk_in.ticket) == ("A001", "A002", "A003")
    assert walk_in.day == WEDNESDAY and walk_in.starts_at is None
    at = local(WEDNESDAY, 9, 31)
    called = services.call_next(session, haircut.id, desk="2", staff=staff, rules=RULES, now=at)
    assert called.ticket == early.ticket and called.desk == "2"
    assert [c.label for c in services.now_calling(session, WEDNESDAY)] == [f"理发 {early.ticket}"]
    recalled = services.recall(session, called.id, staff=staff, now=at + timedelta(minutes=1))
    assert recalled.call_count == 2
    served = services.mark_served(session, called.id, staff=staff, rules=RULES, now=at + timedelta(minutes=20))
    assert served.status == BookingStatus.SERVED and served.served_minutes == haircut.duration_minutes and served.provider_id is not None
    assert balance(session, member.id) == 2  # the service's points for a member
    following = services.call_next(session, haircut.id, desk="2", staff=staff, rules=RULES, now=at + timedelta(minutes=21))
    assert following.id == walk_in.booking_id  # arrived 9:30, before the 10:00 booking
    services.mark_no_show(session, following.id, staff=staff, rules=RULES, now=at + timedelta(minutes=25))
    with pytest.raises(BookingError) as closed:
        services.mark_served(session, following.id, staff=staff, rules=RULES)
    assert closed.value.code == "not_waiting"
    assert services.today_figures(session, WEDNESDAY) == {"booked": 3, "waiting": 1, "served": 1, "no_show": 1}
    types = list(session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.id)))
    assert types.count("booking.served") == 1 and types.count("booking.no_show") == 1 and types.count("booking.created") == 3


def test_walk_in_numbers_continue_the_days_numbering(session, haircut, staff):
    wednesday_morning = local(WEDNESDAY, 8)
    book(session, haircut, NINE, "13800000001", now=local(WEDNESDAY, 7))
    book(session, haircut, "202612020920", "13800000002", now=local(WEDNESDAY, 7))
    walk_in = services.issue_walk_in(session, haircut.id, rules=RULES, staff=staff, now=wednesday_morning)
    assert walk_in.ticket == "A003"


def test_call_next_on_an_empty_queue(session, haircut, staff):
    with pytest.raises(BookingError) as refused:
        services.call_next(session, haircut.id, desk="1", staff=staff, rules=RULES, now=local(WEDNESDAY, 9))
    assert refused.value.code == "queue_empty"
    with pytest.raises(BookingError) as bad:
        services.call_next(session, haircut.id, desk="x", staff=staff, rules=RULES, now=local(WEDNESDAY, 9))
    assert bad.value.code == "bad_desk"


def test_volunteer_hours_and_month_view(session, haircut, staff):
    for i, minute in enumerate(("0900", "0920", "0940")):
        ticket = book(session, haircut, f"20261202{minute}", f"1380000000{i}")
        services.mark_served(session, ticket.booking_id, staff=staff, rules=RULES, minutes=str(15 + i * 15), now=local(WEDNESDAY, 12))
    hours = services.volunteer_hours(session, "2026-12")
    assert [(h.provider, h.service, h.people, h.minutes, h.hours) for h in hours] == [("嘉荷社区理发志愿队", "理发", 3, 90, 1.5)]
    days, rows = services.month_view(session, "2026-12")
    assert len(days) == 31 and rows[0][1] == {WEDNESDAY: 3}
    assert services.volunteer_hours(session, "2026-11") == []


# ---- races ----


def race(app, calls):
    """Run each call in its own thread and app context, all released at once."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(i, call):
        with app.app_context():
            barrier.wait()
            try:
                outcomes[i] = call(db.session)
            except BookingError as error:
                outcomes[i] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def _racer(service_id, slot_key, phone, now=MONDAY):
    return lambda s: services.book(s, service_id, slot_key, rules=RULES, request_key=services.new_request_key(), phone=phone, now=now)


def test_fifty_racing_for_the_last_place_one_wins_and_49_are_offered_the_next_free_slots(app, session, haircut):
    book(session, haircut, NINE, "13700000000")  # one of the two chairs is taken
    outcomes = race(app, [_racer(haircut.id, NINE, f"135{i:08d}") for i in range(50)])
    wins = [o for o in outcomes if isinstance(o, services.TicketView)]
    full = [o for o in outcomes if isinstance(o, SlotFullError)]
    assert len(wins) == 1 and len(full) == 49, [getattr(o, "code", o) for o in outcomes]
    assert all(f.status == 409 and [s.starts_at for s in f.alternatives][:1] == [local(WEDNESDAY, 9, 20)] for f in full)
    session.rollback()  # a fresh read transaction sees what the other threads committed
    assert session.scalar(select(Slot.booked).where(Slot.starts_at == local(WEDNESDAY, 9))) == 2
    assert session.scalar(select(func.count()).select_from(Booking)) == 2
    assert session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "booking.created")) == 2


def test_capacity_holds_in_twenty_repeated_rounds(app, session, haircut, staff):
    """20 rounds of 8 people racing for a 2-chair slot (a fresh slot each round): never more
    than the capacity, and the ticket numbers of each day stay gap-free."""
    rounds = 0
    for week in range(3):
        day = WEDNESDAY + timedelta(days=7 * week)
        for slot in services.day_slots(session, haircut, day, ZONE):
            if rounds == 20:
                break
            key = slot.key(ZONE)
            outcomes = race(app, [_racer(haircut.id, key, f"13{rounds:02d}{i:07d}", local(day, 7)) for i in range(8)])
            assert sum(isinstance(o, services.TicketView) for o in outcomes) == 2, [getattr(o, "code", o) for o in outcomes]
            assert sum(isinstance(o, SlotFullError) for o in outcomes) == 6
            rounds += 1
    assert rounds == 20
    session.rollback()  # a fresh read transaction sees what the other threads committed
    assert session.scalar(select(func.max(Slot.booked))) == 2
    for day in (WEDNESDAY + timedelta(days=7 * w) for w in range(3)):
        seqs = sorted(session.scalars(select(Booking.ticket_seq).where(Booking.day == day)))
        assert seqs == list(range(1, len(seqs) + 1))


def test_fifty_taps_with_one_request_key_book_once(app, session, haircut):
    key, service_id = services.new_request_key(), haircut.id
    outcomes = race(app, [lambda s: services.book(s, service_id, NINE, rules=RULES, request_key=key, phone="13800000001", now=MONDAY)] * 50)
    assert {o.booking_id for o in outcomes if isinstance(o, services.TicketView)} and len({o.booking_id for o in outcomes}) == 1
    session.rollback()  # a fresh read transaction sees what the other threads committed
    assert session.scalar(select(func.count()).select_from(Booking)) == 1


def test_closure_model_is_unique_per_day(session, staff):
    services.save_closure(session, day="2027-01-01", reason="元旦", actor=staff)
    services.save_closure(session, day="2027-01-01", reason="元旦假期", actor=staff)
    assert session.scalar(select(func.count()).select_from(ClosureDay)) == 1


# ---- the availability cache (kiosk/booking/cache.py) ----


def test_the_cached_day_is_dropped_by_a_booking_here_and_by_a_commit_from_another_connection(session, haircut):
    """Shown to fail without its safeguards: with the after_commit listener removed the cached
    day survives the booking; with the PRAGMA data_version check removed it survives the other
    connection's commit."""
    import sqlite3

    from kiosk.booking.cache import availability_cache as cache

    key, now, until = ("test-day", haircut.id), datetime(2026, 11, 30, 0, 0, tzinfo=ZONE), datetime(2026, 12, 1, tzinfo=ZONE)

    def cached_now():
        session.rollback()  # the next request's read transaction
        return cache.get(key, cache.generation(session), now)

    cache.put(key, cache.generation(session), now, until, "the day, rendered")
    assert cached_now() == "the day, rendered"  # nothing committed in between: reused

    book(session, haircut)  # commits in this process
    assert cached_now() is None

    cache.put(key, cache.generation(session), now, until, "the day, rendered again")
    assert cached_now() == "the day, rendered again"
    other = sqlite3.connect(db.engine.url.database)  # another process, a `kiosk` command, sync
    try:
        with other:
            other.execute("UPDATE service_slot SET booked = booked + 1")
    finally:
        other.close()
    assert cached_now() is None


# ---- the keypad path's shortcuts give what the general code gives ----


@pytest.mark.parametrize(
    ("zone", "day", "windows"),
    [
        # The haircut's morning, a second overlapping window with other places and a 7-minute
        # step (a later window's slot at the same time wins), in Hangzhou.
        (ZONE, WEDNESDAY, [("09:00", "11:30", 20, 2), ("10:00", "12:00", 7, 3)]),
        # Across the spring and autumn clock changes (stepped in wall time there).
        (ZoneInfo("Europe/Berlin"), date(2026, 3, 29), [("00:30", "04:00", 30, 1), ("08:00", "09:00", 20, 2)]),
        (ZoneInfo("Europe/Berlin"), date(2026, 10, 25), [("01:00", "04:00", 45, 1)]),
    ],
)
def test_the_one_slot_book_asks_for_is_the_days_slot_at_that_time(zone, day, windows):
    """book() computes the slot asked for (_slot_at) instead of building the day's slots: for
    every minute of the day (UTC) it must give the slot _day_slots gives at that time, or none."""
    from datetime import time

    class _Service:
        id, duration_minutes = 7, 20

    templates = [
        services._TemplateRow(day.weekday(), None, None, time.fromisoformat(a), time.fromisoformat(b), minutes, places, None)
        for a, b, minutes, places in windows
    ]
    schedule = services._Schedule(templates, {}, set(), {})
    slots = {slot.starts_at: slot for slot in services._day_slots(_Service(), schedule, day, zone)}
    assert len(slots) >= 4
    start = datetime.combine(day, datetime.min.time(), zone).astimezone(services.UTC) - timedelta(hours=2)
    for minute in range(28 * 60):
        at = start + timedelta(minutes=minute)
        assert services._slot_at(_Service(), schedule, day, zone, at) == slots.get(at), at


def test_the_unit_of_work_finds_the_persons_bookings_through_their_index(session, haircut):
    """The read under the write lock must find the person's open bookings by person_key, not by
    reading every booking of the service from today on (SQLite picked the service's index,
    ~0.1 ms a booking and growing with the month; bench/booking.py). Shown to fail without the
    unary + in _LOCKED_READ_SQL (the plan then names sqlite_autoindex_booking_2)."""
    book(session, haircut)
    session.rollback()
    params = {"key": "k", "service": haircut.id, "person": "p:13800000001", "today": "2026-11-30", "starts": "2026-12-02 01:00:00.000000", "day": "2026-12-02"}
    plan = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + services._LOCKED_READ_SQL, params | services._OPEN_PARAMS).all()
    outer = [row[3] for row in plan if row[1] == 0 and row[3].startswith("SEARCH b ")]
    assert outer == ["SEARCH b USING INDEX ix_booking_person_key (person_key=?)"], plan


def _plan_params(**given):
    return (
        {
            "member": None,
            "guest": "p:13800000001",
            "phone": "13800000001",
            "service": 1,
            "key": "k",
            "now": "2026-11-30 00:00:00",
            "now_fraction": ".000000",
            "no_show": "no_show",
            "promoted": "promoted",
            "weekday": 2,
            "day": "2026-12-02",
            "today": "2026-11-30",
            "starts": "2026-12-02 01:00:00.000000",
        }
        | services._OPEN_PARAMS
        | given
    )


@pytest.mark.parametrize(
    "sql", ["_PLAN_READ_BY_PHONE_SQL", "_PLAN_READ_BY_MEMBER_SQL", "_PLAN_READ_BY_PHONE_OTHER_DAY_SQL", "_PLAN_READ_BY_MEMBER_OTHER_DAY_SQL"]
)
def test_the_plan_read_finds_the_persons_rows_through_their_indexes(session, haircut, sql):
    """Every keypad booking reads the person's no-shows, open bookings and waitlist news in its
    one read (_PLAN_READ_SQL), under the write lock: each through the person_key index, never a
    scan of the bookings or of the waitlist (without migration 0014's index the plan says SCAN
    booking_waitlist; without the unary + the open bookings are read through the service's
    index, sqlite_autoindex_booking_2), and nothing materialised."""
    book(session, haircut)
    session.rollback()
    plan = [row[3] for row in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + getattr(services, sql), _plan_params()).all()]
    assert plan.count("SEARCH b USING INDEX ix_booking_person_key (person_key=?)") == 4, (
        plan
    )  # the no-shows (count, last), the open bookings (count, at this time)
    assert [d for d in plan if "booking_waitlist" in d] == ["SEARCH booking_waitlist USING INDEX ix_booking_waitlist_person_key (person_key=?)"], plan
    assert not [d for d in plan if d.startswith("SCAN") and d.split()[1] in ("booking", "b", "booking_waitlist", "member", "service")], plan
    # No ephemeral tables: a WITH clause here was materialised (~130,000 instructions a booking more
    # than the separate reads, callgrind).
    assert not [d for d in plan if d.startswith("MATERIALIZE")], plan


def test_the_one_plan_read_gives_what_the_separate_reads_gave(session, haircut, staff):
    """_read_plan (one statement in the unit of work) against the reads it replaced, through the
    session and SQLAlchemy: identify, the service, the no-shows (_NOSHOWS), this request key's
    booking, waitlist news (_PROMOTIONS), the day's schedule (_load_schedule) and the unit's own
    read (_LOCKED_READ_SQL), over schedules with templates valid for a range of days, an
    override, a closed date and a closure; a member by card and by phone, guests; no-shows
    before and after a lift."""
    member = register_member(session, name="张建华", phone="13900000001", community="", age_band="60-69", consent=True, consent_version="t", actor=None)
    session.commit()
    last = _no_show_three_times(session, haircut, staff, phone="13800000002")  # blocked after 16 Dec
    lifted = local(last, 12)
    services.lift_block(session, phone="13800000002", reason="已说明", staff=staff, now=lifted)
    again = book(session, haircut, "202612300900", "13800000002", now=local(last, 13))
    services.mark_no_show(session, again.booking_id, staff=staff, rules=RULES, now=local(date(2026, 12, 30), 9, 30))
    _no_show_three_times(session, haircut, staff, phone="13800000003")  # blocked, never lifted
    book(session, haircut, "202612301000", "13800000004", now=lifted, key="a-known-request-key")
    a = book(session, haircut, "202612301020", "13800000005", now=lifted)
    book(session, haircut, "202612301020", "13800000006", now=lifted)
    services.join_waitlist(session, haircut.id, "202612301020", rules=RULES, phone="13800000001", now=lifted)
    services.cancel(session, a.booking_id, rules=RULES, now=lifted)  # 13800000001 has waitlist news
    # Then the schedule (after the bookings above, which it would refuse). Wednesdays: the
    # haircut's 09:00-11:30 always, and an afternoon valid in December only; Thursdays from 10
    # Dec; an override with other hours on one Wednesday, a closed date on another, a closure.
    services.save_template(
        session, haircut, weekday=2, starts="14:00", ends="16:00", slot_minutes=30, capacity=1, valid_from="2026-12-01", valid_until="2026-12-31", actor=staff
    )
    services.save_template(session, haircut, weekday=3, starts="08:00", ends="09:00", slot_minutes=15, capacity=4, valid_from="2026-12-10", actor=staff)
    services.save_override(session, haircut, day="2026-12-09", closed=False, starts="13:00", ends="14:00", capacity="3", actor=staff)
    services.save_override(session, haircut, day="2026-12-16", closed=True, actor=staff)
    services.save_closure(session, day="2026-12-23", reason="冬至", actor=staff)
    session.commit()
    raw = services._raw(session.connection())
    who = [
        {"phone": "13800000001"},  # a guest with waitlist news
        {"phone": "13800000002"},  # no-shows before and after a lift
        {"phone": "13800000003"},  # blocked
        {"phone": "13800000004"},  # has a booking (the request key) and it is open
        {"phone": "13900000001"},  # a member by phone
        {"member_id": member.id},  # and by card
    ]
    days = [date(2026, 12, 1) + timedelta(days=n) for n in range(45)]
    seen = {"blocked": 0, "news": 0, "key": 0, "open": 0, "closed": 0, "windows": 0, "today": 0}
    for person_kwargs in who:
        person = services.identify(session, **person_kwargs)
        for day in days:
            for hhmm in ("0800", "0900", "1000", "1300", "1400"):
                for key in ("a-fresh-request-key", "a-known-request-key"):
                    now = lifted + timedelta(minutes=1, microseconds=123457)
                    request = services._Request(
                        haircut.id,
                        day.strftime("%Y%m%d") + hhmm,
                        key,
                        person_kwargs.get("phone"),
                        person_kwargs.get("member_id"),
                        BookingChannel.KIOSK,
                        RULES,
                        now,
                    )
                    read = services._read_plan(raw, request)
                    assert read.person == person
                    assert read.service == services.ServiceRow(*(getattr(haircut, name) for name in services._SERVICE_COLUMNS))
                    count, last_close = session.execute(services._NOSHOWS, {"person_key": person.key, "since": now - timedelta(days=haircut.noshow_days)}).one()
                    assert read.noshows == (count, last_close)
                    until = services.blocked_until(session, person.key, haircut, now)
                    assert services.blocked_until(None, person.key, haircut, now, noshows=read.noshows) == until
                    by_key = session.scalar(select(Booking).where(Booking.request_key == key))
                    assert (read.key_booking, read.key_person) == ((by_key.id, by_key.person_key) if by_key else (None, None))
                    assert read.news == (session.execute(services._PROMOTIONS, {"person_key": person.key}).first() is not None)
                    assert read.schedule is not None and read.at is not None
                    windows = services._windows(haircut, services._load_schedule(session, haircut, day, day, booked=False), day)
                    assert services._windows(haircut, read.schedule, day) == windows, day
                    params = {"key": key, "service": haircut.id, "person": person.key, "today": "2026-12-16", "starts": services._sql_moment(read.at)}
                    # The people ahead only for a ticket of today (TicketView.people_ahead).
                    today = day == services.local_today(now, ZONE)
                    locked_sql = services._LOCKED_READ_SQL if today else services._LOCKED_READ_OTHER_DAY_SQL
                    locked = raw.execute(locked_sql, params | {"day": services._sql_day(day)} | services._OPEN_PARAMS).fetchone()
                    assert read.locked == (locked[0], locked[1], locked[4], locked[5])
                    assert (read.locked[3] is not None) == today
                    seen["today"] += today
                    seen["blocked"] += until is not None
                    seen["news"] += read.news
                    seen["key"] += read.key_booking is not None
                    seen["open"] += read.locked[0] > 0
                    seen["closed"] += windows == []
                    seen["windows"] += len(windows) > 1
    assert all(seen.values()), seen  # every case above came up


def test_a_keypad_booking_seals_the_person_to_the_hub_key_stored_at_its_commit(session, haircut):
    """The keypad's booking reads in its unit of work (issue 11 part 6): a phone is sealed before
    the lock with the hub key last seen, a member by card inside it; the unit seals again when the
    stored key is another (just enrolled, or the hub rolled its key)."""
    from base64 import b64decode

    from nacl.public import PrivateKey, SealedBox

    from kiosk.sync.models import SyncState
    from kiosk.sync.protocol import new_box_keypair

    members = [
        register_member(session, name="张建华", phone=f"1390000000{n}", community="", age_band="60-69", consent=True, consent_version="t", actor=None)
        for n in (8, 9)
    ]
    session.commit()
    slots = iter(["202612020900", "202612020920", "202612020940", "202612021000", "202612021020", "202612021040"])

    def person_of(**who):
        ticket = services.book(session, haircut.id, next(slots), rules=RULES, request_key=services.new_request_key(), now=MONDAY, **who)
        payload = session.scalar(select(OutboxEvent).where(OutboxEvent.payload["booking_id"].as_integer() == ticket.booking_id)).payload
        return {k: v for k, v in payload.items() if k.startswith("person")}

    assert person_of(phone="13800000101") == {"person_phone": "13800000101"}  # not enrolled yet
    for n, member in enumerate(members):
        private, public = new_box_keypair()
        session.merge(SyncState(id=1, hub_public_key=public))  # enrolled, then the hub rolls its key
        session.commit()
        for who, phone in (({"phone": f"1380000011{n}"}, f"1380000011{n}"), ({"member_id": member.id}, member.phone)):
            person = person_of(**who)
            assert "person_phone" not in person
            assert SealedBox(PrivateKey(b64decode(private))).decrypt(b64decode(person["person_sealed"])) == phone.encode()
