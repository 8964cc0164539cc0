import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from kiosk.checkin.models import Activity, CheckIn, CheckinMethod, CheckinStatus
from kiosk.checkin.services import (
    CheckinError,
    CheckinRules,
    ScannedCode,
    attendance,
    check_in,
    current_occurrence,
    issue_pass,
    poster_token,
    read_checkin_token,
    read_pass,
    rotating_token,
    rotation_step,
    save_activity,
    statistics,
    undo_checkin,
)
from kiosk.extensions import db
from kiosk.points.models import PointsEntry, PointsReason
from kiosk.points.services import balance
from kiosk.signing import TokenSigner
from kiosk.sync.models import OutboxEvent
from tests.helpers import register

ZONE = ZoneInfo("Asia/Shanghai")
RULES = CheckinRules(zone=ZONE, device_id="kiosk-1", district_key="district-key", repeat_minutes=5)
CODE_SIGNER = TokenSigner("centre-key", purpose="checkin-code")
PASS_SIGNER = TokenSigner("centre-key", purpose="checkin-pass")
CENTRE = "XH-CY-CY1"
# A Saturday afternoon class: 14:00–16:00 Beijing time.
START = datetime(2026, 11, 28, 14, 0, tzinfo=ZONE)
DURING = START + timedelta(minutes=30)


def activity(session, **fields):
    values = {
        "title": "书法课",
        "category": "culture",
        "description": "",
        "place": "二楼活动室",
        "starts_at": START.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (START + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "weekly": False,
        "repeat_until": "",
        "capacity": "",
        "points": "5",
        "policy": "once",
        "zone": ZONE,
        "actor": None,
    } | fields
    a = save_activity(session, None, **values)
    session.commit()
    return a


def counts(session):
    """(check-ins, points entries, check-in events); registering a member writes its own event."""
    session.rollback()
    events = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type.like("checkin.%"))
    return (*(session.scalar(select(func.count()).select_from(m)) for m in (CheckIn, PointsEntry)), session.scalar(events))


def test_member_check_in_writes_checkin_points_and_event_together(session):
    from kiosk.sync.models import SyncState
    from kiosk.sync.protocol import new_box_keypair

    hub_private, hub_public = new_box_keypair()
    session.add(SyncState(id=1, hub_public_key=hub_public))  # an enrolled kiosk
    session.commit()
    a = activity(session)
    member = register(session)
    session.commit()
    result = check_in(session, a.id, rules=RULES, method=CheckinMethod.POSTER, phone="13812345678", now=DURING)
    assert result.member_name == member.name and result.points == 5
    assert session.get(CheckIn, result.checkin_id).member_id == member.id
    assert counts(session) == (1, 1, 1)
    assert balance(session, member.id) == 5
    event = session.scalar(select(OutboxEvent).where(OutboxEvent.type == "checkin.created"))
    text = str(event.payload)
    assert "13812345678" not in text and "张建华" not in text
    assert event.payload["member"] is True and event.payload["age_band"] == "70-79"
    # The phone is sealed to the hub: only the hub's private key opens it.
    from base64 import b64decode

    from nacl.public import PrivateKey, SealedBox

    assert SealedBox(PrivateKey(b64decode(hub_private))).decrypt(b64decode(event.payload["person_sealed"])) == b"13812345678"


def _opened(private_key: str, sealed: str) -> bytes:
    from base64 import b64decode

    from nacl.public import PrivateKey, SealedBox

    return SealedBox(PrivateKey(b64decode(private_key))).decrypt(b64decode(sealed))


def test_a_check_in_seals_to_the_hub_key_stored_at_its_commit(session):
    """check_in seals the phone before the writer queue with the hub key this process last saw
    and checks inside the unit of work that it is still the stored one. Not yet enrolled: the
    phone waits unsealed (kiosk.sync.outbox.person_field); enrolled, and the hub's key rolled,
    the next check-in is sealed to the new key.

    Shown to fail without the check: with the unit of work trusting the key seen before, the
    check-ins after enrolment and after the roll carried the old form (person_phone, then a
    seal only the old key opens)."""
    from kiosk.sync.models import SyncState
    from kiosk.sync.outbox import person_field
    from kiosk.sync.protocol import new_box_keypair

    a = activity(session, policy="repeatable")
    phones = iter(f"139000022{n:02d}" for n in range(10))

    def event_of(phone):
        result = check_in(session, a.id, rules=RULES, method=CheckinMethod.POSTER, phone=phone, now=DURING)
        return session.scalar(select(OutboxEvent).where(OutboxEvent.payload["checkin_id"].as_integer() == result.checkin_id)).payload

    phone = next(phones)
    assert {k: v for k, v in event_of(phone).items() if k.startswith("person")} == person_field(session, phone) == {"person_phone": phone}
    first_private, first_public = new_box_keypair()
    session.add(SyncState(id=1, hub_public_key=first_public))  # enrolled
    session.commit()
    for _ in range(2):  # the first reads the new key inside, the second seals before the queue
        phone = next(phones)
        payload = event_of(phone)
        assert "person_phone" not in payload and _opened(first_private, payload["person_sealed"]) == phone.encode()
    second_private, second_public = new_box_keypair()
    session.get(SyncState, 1).hub_public_key = second_public  # the hub rolled its box key
    session.commit()
    for _ in range(2):
        phone = next(phones)
        assert _opened(second_private, event_of(phone)["person_sealed"]) == phone.encode()


def test_attendance_with_a_limit_is_the_newest_check_ins(session):
    a = activity(session)
    for n in range(5):
        check_in(session, a.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone=f"1390000200{n}", now=DURING)
    every = attendance(session, a.id)
    assert len(every) == 5 and [c.id for c in attendance(session, a.id, limit=2)] == [every[0].id, every[1].id]
    assert every[0].id > every[1].id > every[4].id


def test_guest_check_in_counts_but_earns_no_points(session):
    a = activity(session)
    result = check_in(session, a.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone="139 0000 1111", now=DURING)
    assert result.member_name is None and result.points == 0 and result.phone == "13900001111"
    assert session.get(CheckIn, result.checkin_id).phone == "13900001111"
    assert counts(session) == (1, 0, 1)


@pytest.mark.parametrize(
    "when, code",
    [
        (START - timedelta(minutes=31), "not_yet_open"),
        (START - timedelta(minutes=29), None),
        (START + timedelta(hours=2, minutes=29), None),
        (START + timedelta(hours=2, minutes=31), "closed"),
    ],
)
def test_the_window_opens_30_minutes_before_and_closes_30_after(session, when, code):
    a = activity(session)
    if code is None:
        check_in(session, a.id, rules=RULES, method=CheckinMethod.POSTER, phone="13900001111", now=when)
        return
    with pytest.raises(CheckinError) as info:
        check_in(session, a.id, rules=RULES, method=CheckinMethod.POSTER, phone="13900001111", now=when)
    assert info.value.code == code
    assert counts(session) == (0, 0, 0)


def test_weekly_sessions_and_daily_policy(session):
    a = activity(session, weekly=True, repeat_until="2026-12-12", policy="daily")
    for week in range(3):
        check_in(session, a.id, rules=RULES, method=CheckinMethod.POSTER, phone="13900001111", now=DURING + timedelta(weeks=week))
    with pytest.raises(CheckinError) as info:
        check_in(session, a.id, rules=RULES, method=CheckinMethod.POSTER, phone="13900001111", now=DURING + timedelta(weeks=2, minutes=5))
    assert info.value.code == "already_checked_in"
    with pytest.raises(CheckinError) as info:  # after the last session
        check_in(session, a.id, rules=RULES, method=CheckinMethod.POSTER, phone="13900001111", now=DURING + timedelta(weeks=3))
    assert info.value.code == "closed"
    with pytest.raises(CheckinError) as info:  # between sessions: the next one is not open yet
        check_in(session, a.id, rules=RULES, method=CheckinMethod.POSTER, phone="13900002222", now=DURING + timedelta(days=3))
    assert info.value.code == "not_yet_open"
    dates = session.scalars(select(CheckIn.session_date).order_by(CheckIn.id)).all()
    assert [d.isoformat() for d in dates] == ["2026-11-28", "2026-12-05", "2026-12-12"]
    assert current_occurrence(a, DURING + timedelta(weeks=1), ZONE).session_date.isoformat() == "2026-12-05"


def test_repeatable_counts_each_visit_but_not_a_double_tap(session):
    a = activity(session, policy="repeatable", starts_at="2026-11-28T08:00", ends_at="2026-11-28T20:00")
    base = datetime(2026, 11, 28, 9, 0, tzinfo=ZONE)
    check_in(session, a.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone="13900001111", now=base)
    with pytest.raises(CheckinError):
        check_in(session, a.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone="13900001111", now=base + timedelta(minutes=2))
    check_in(session, a.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone="13900001111", now=base + timedelta(hours=3))
    assert counts(session)[0] == 2


@pytest.mark.parametrize(
    "setup, code",
    [
        ("cancelled", "activity_cancelled"),
        ("full", "full"),
        ("revoked", "member_revoked"),
        ("bad_phone", "phone_wrong_length"),
        ("unknown", "unknown_activity"),
        ("staff_no_reason", "reason_required"),
    ],
)
def test_each_refusal_has_its_reason_and_writes_nothing(session, make_staff, setup, code):
    a = activity(session, capacity="1" if setup == "full" else "")
    member = register(session)
    session.commit()
    if setup == "full":
        check_in(session, a.id, rules=RULES, method=CheckinMethod.POSTER, phone="13900009999", now=DURING)
    if setup == "cancelled":
        a.status = "cancelled"
    if setup == "revoked":
        member.active = False
    session.commit()
    before = counts(session)
    kwargs = {"phone": "1381234" if setup == "bad_phone" else "13812345678"}
    if setup == "staff_no_reason":
        kwargs["staff"] = make_staff()
    with pytest.raises(CheckinError) as info:
        check_in(
            session,
            999 if setup == "unknown" else a.id,
            rules=RULES,
            method=CheckinMethod.STAFF if setup == "staff_no_reason" else CheckinMethod.POSTER,
            now=DURING,
            **kwargs,
        )
    assert info.value.code == code
    assert counts(session) == before


def test_undo_reverses_points_and_frees_the_slot(session, make_staff):
    staff = make_staff()
    a = activity(session)
    member = register(session)
    session.commit()
    first = session.get(CheckIn, check_in(session, a.id, rules=RULES, method=CheckinMethod.KIOSK_CARD, member=member, now=DURING).checkin_id)
    with pytest.raises(CheckinError) as info:
        undo_checkin(session, first.id, staff=staff, reason="  ", rules=RULES)
    assert info.value.code == "reason_required"
    undo_checkin(session, first.id, staff=staff, reason="签错活动了", rules=RULES)
    assert balance(session, member.id) == 0
    reversal = session.scalar(select(PointsEntry).where(PointsEntry.reason == PointsReason.CHECKIN_UNDONE))
    assert (reversal.delta, reversal.reference) == (-5, f"checkin:{first.id}")
    with pytest.raises(CheckinError) as info:
        undo_checkin(session, first.id, staff=staff, reason="again", rules=RULES)
    assert info.value.code == "already_undone"
    again = check_in(session, a.id, rules=RULES, method=CheckinMethod.KIOSK_CARD, member=member, now=DURING)
    assert session.get(CheckIn, again.checkin_id).status == CheckinStatus.ACTIVE and balance(session, member.id) == 5
    types = session.scalars(select(OutboxEvent.type).where(OutboxEvent.type.like("checkin.%")).order_by(OutboxEvent.id)).all()
    assert types == ["checkin.created", "checkin.undone", "checkin.created"]


# ---- tokens ----


def test_poster_and_rotating_tokens(session):
    a = activity(session)
    now = DURING
    assert read_checkin_token(poster_token(a, CODE_SIGNER, CENTRE), CODE_SIGNER, CENTRE, now, 20) == ScannedCode(a.id, CheckinMethod.POSTER)
    step = rotation_step(now, 20)
    for age in (0, 1):
        token = rotating_token(a, CODE_SIGNER, CENTRE, step - age)
        assert read_checkin_token(token, CODE_SIGNER, CENTRE, now, 20).method == CheckinMethod.ROTATING
    for age in (2, 10, -1):  # older than one step of grace, or from the future
        with pytest.raises(CheckinError) as info:
            read_checkin_token(rotating_token(a, CODE_SIGNER, CENTRE, step - age), CODE_SIGNER, CENTRE, now, 20)
        assert info.value.code == "token_expired"


def test_a_photo_of_the_rotating_code_stops_working_after_40_seconds(session):
    a = activity(session)
    shown_at = DURING
    token = rotating_token(a, CODE_SIGNER, CENTRE, rotation_step(shown_at, 20))
    assert read_checkin_token(token, CODE_SIGNER, CENTRE, shown_at + timedelta(seconds=19), 20)
    with pytest.raises(CheckinError):
        read_checkin_token(token, CODE_SIGNER, CENTRE, shown_at + timedelta(seconds=41), 20)


def test_tokens_for_another_centre_and_passes_for_another_activity(session):
    a = activity(session)
    b = activity(session, title="舞蹈课")
    with pytest.raises(CheckinError) as info:
        read_checkin_token(poster_token(a, CODE_SIGNER, "XH-GD-JH"), CODE_SIGNER, CENTRE, DURING, 20)
    assert info.value.code == "wrong_centre"
    issued = issue_pass(ScannedCode(a.id, CheckinMethod.ROTATING), PASS_SIGNER, CENTRE, DURING)
    assert read_pass(issued, PASS_SIGNER, CENTRE, a.id, DURING + timedelta(minutes=9), 10) == CheckinMethod.ROTATING
    with pytest.raises(CheckinError) as info:
        read_pass(issued, PASS_SIGNER, CENTRE, b.id, DURING, 10)
    assert info.value.code == "wrong_activity"
    with pytest.raises(CheckinError) as info:
        read_pass(issued, PASS_SIGNER, CENTRE, a.id, DURING + timedelta(minutes=11), 10)
    assert info.value.code == "token_expired"
    with pytest.raises(CheckinError) as info:  # a check-in code is not a pass, nor the other way round
        read_pass(poster_token(a, CODE_SIGNER, CENTRE), PASS_SIGNER, CENTRE, a.id, DURING, 10)
    assert info.value.code == "token_tampered"


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_of_a_valid_token_is_refused(session, data):
    a = session.get(Activity, 1) or activity(session)
    kind = data.draw(st.sampled_from(["poster", "rotating", "pass"]))
    step = rotation_step(DURING, 20)
    token = {
        "poster": lambda: poster_token(a, CODE_SIGNER, CENTRE),
        "rotating": lambda: rotating_token(a, CODE_SIGNER, CENTRE, step),
        "pass": lambda: issue_pass(ScannedCode(a.id, CheckinMethod.POSTER), PASS_SIGNER, CENTRE, DURING),
    }[kind]()
    mutation = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate", "append"]))
    i = data.draw(st.integers(0, len(token) - 1))
    ch = data.draw(st.characters(min_codepoint=32, max_codepoint=126))
    mutated = {
        "replace": token[:i] + ch + token[i + 1 :],
        "insert": token[:i] + ch + token[i:],
        "delete": token[:i] + token[i + 1 :],
        "truncate": token[:i],
        "append": token + ch,
    }[mutation]
    if mutated == token:
        return
    with pytest.raises(CheckinError):
        if kind == "pass":
            read_pass(mutated, PASS_SIGNER, CENTRE, a.id, DURING, 10)
        else:
            read_checkin_token(mutated, CODE_SIGNER, CENTRE, DURING, 20)


# ---- races (real SQLite, one thread and session per person) ----


def race(app, activity_id, phones):
    barrier = threading.Barrier(len(phones))
    outcomes, lock = [], threading.Lock()

    def attempt(phone):
        with app.app_context():
            barrier.wait()
            try:
                check_in(db.session, activity_id, rules=RULES, method=CheckinMethod.POSTER, phone=phone, now=DURING)
                result = "ok"
            except CheckinError as error:
                result = error.code
            finally:
                db.session.remove()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(p,)) for p in phones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_two_hundred_people_at_once_make_two_hundred_checkins_and_points(app, session):
    a = activity(session)
    for i in range(200):
        register(session, name=f"会员{chr(0x4E00 + i)}", phone=f"137{i:08d}")
    session.commit()
    outcomes = race(app, a.id, [f"137{i:08d}" for i in range(200)])
    assert outcomes.count("ok") == 200
    assert counts(session) == (200, 200, 200)


def test_the_same_person_fifty_times_at_once_checks_in_once(app, session):
    a = activity(session)
    member = register(session)
    session.commit()
    outcomes = race(app, a.id, ["13812345678"] * 50)
    assert outcomes.count("ok") == 1 and outcomes.count("already_checked_in") == 49
    assert counts(session) == (1, 1, 1) and balance(session, member.id) == 5


def test_capacity_is_never_exceeded(app, session):
    a = activity(session, capacity="30")
    outcomes = race(app, a.id, [f"136{i:08d}" for i in range(100)])
    assert outcomes.count("ok") == 30 and outcomes.count("full") == 70
    assert counts(session)[0] == 30


def test_statistics_count_attendances_and_distinct_people_per_category_and_month(session):
    lecture = activity(session, title="法律讲座", category="lecture")
    weekly = activity(session, title="书法课", weekly=True, repeat_until="2026-12-31", policy="daily")
    for phone in ("13900000001", "13900000002", "13900000003"):
        check_in(session, lecture.id, rules=RULES, method=CheckinMethod.POSTER, phone=phone, now=DURING)
    for week in (0, 1):
        check_in(session, weekly.id, rules=RULES, method=CheckinMethod.POSTER, phone="13900000001", now=DURING + timedelta(weeks=week))
    figures = {(f.month, f.category.value): (f.attendances, f.people) for f in statistics(session, now=DURING + timedelta(weeks=1))}
    assert figures == {("2026-11", "lecture"): (3, 3), ("2026-11", "culture"): (1, 1), ("2026-12", "culture"): (1, 1)}


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"title": ""}, "title_required"),
        ({"title": "课" * 61}, "title_too_long"),
        ({"ends_at": "2026-11-28T13:00"}, "ends_before_start"),
        ({"starts_at": "yesterday"}, "bad_datetime"),
        ({"capacity": "0"}, "capacity_out_of_range"),
        ({"capacity": "ten"}, "not_an_integer"),
        ({"points": "-1"}, "points_out_of_range"),  # issue 7: say "0 or more", not "not a whole number"
        ({"points": "1001"}, "points_out_of_range"),
        ({"policy": "whenever"}, "bad_policy"),
        ({"category": "party"}, "bad_category"),
        ({"weekly": True, "repeat_until": "2026-01-01"}, "repeat_before_start"),
    ],
)
def test_bad_activities_are_refused(session, fields, code):
    with pytest.raises(CheckinError) as info:
        activity(session, **fields)
    assert info.value.code == code
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Activity)) == 0


def test_statistics_window_follows_the_centres_calendar(session):
    a = activity(session, starts_at="2026-11-01T06:00", ends_at="2026-11-01T08:00")
    check_in(session, a.id, rules=RULES, method=CheckinMethod.POSTER, phone="13900000001", now=datetime(2026, 11, 1, 6, 30, tzinfo=ZONE))
    # 07:00 on 1 December in Beijing is still 30 November in UTC.
    now = datetime(2026, 12, 1, 7, 0, tzinfo=ZONE).astimezone(ZoneInfo("UTC"))
    assert [f.month for f in statistics(session, months=1, now=now, zone=ZONE)] == []
    assert [f.month for f in statistics(session, months=2, now=now, zone=ZONE)] == ["2026-11"]


def test_every_error_of_an_activity_is_reported_at_once(session):
    """Before several(), only the first refusal (the title) came back; the rest one save at a time."""
    with pytest.raises(CheckinError) as info:
        activity(session, title="", category="", points="\u22125", ends_at="2026-11-28T13:00", capacity="ten")
    found = {(e.field, e.code) for e in info.value.all_errors}
    assert found == {
        ("title", "title_required"),
        ("category", "bad_category"),
        ("points", "points_out_of_range"),
        ("ends_at", "ends_before_start"),
        ("capacity", "not_an_integer"),
    }
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Activity)) == 0
