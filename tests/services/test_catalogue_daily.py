"""record_daily_counts (the district's catalogue.daily event) is safe for a nightly job or a
hook run before every sync: one event per day however often or concurrently it is called."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from kiosk.catalogue import demo
from kiosk.catalogue.models import Book, Copy
from kiosk.catalogue.services import give_back, lend, record_daily_counts
from kiosk.extensions import db
from kiosk.sync.models import OutboxEvent
from tests.helpers import at_once, register

ZONE = ZoneInfo("Asia/Shanghai")


def _daily(session) -> list[dict]:
    session.rollback()
    return [e.payload for e in session.scalars(select(OutboxEvent).where(OutboxEvent.type == "catalogue.daily").order_by(OutboxEvent.id))]


def test_a_day_is_recorded_once_however_often_it_is_asked(session):
    demo.load(session, None)
    assert record_daily_counts(session, date(2026, 11, 27), ZONE) is True
    assert record_daily_counts(session, date(2026, 11, 27), ZONE) is False
    assert record_daily_counts(session, date(2026, 11, 28), ZONE) is True
    assert [p["day"] for p in _daily(session)] == ["2026-11-27", "2026-11-28"]


def test_without_a_day_it_records_yesterday_in_the_centres_time_zone(session):
    """01:30 in Shanghai on the 29th is 17:30 UTC on the 28th: yesterday there is the 28th.
    The zone comes from the app's TIMEZONE when not given (as a hook would call it)."""
    now = datetime(2026, 11, 28, 17, 30, tzinfo=ZoneInfo("UTC"))
    assert record_daily_counts(session, now=now) is True
    assert record_daily_counts(session, now=now + timedelta(hours=3)) is False  # same day there
    assert [p["day"] for p in _daily(session)] == ["2026-11-28"]


def test_counts_that_day_with_no_personal_data(session):
    demo.load(session, None)
    member = register(session)
    session.commit()
    barcodes = list(session.scalars(select(Copy.barcode).order_by(Copy.id).limit(3)))
    day = datetime(2026, 11, 20, 10, tzinfo=ZONE)
    for code in barcodes:
        lend(session, member, code, zone=ZONE, now=day, staff=None)
    give_back(session, barcodes[0], zone=ZONE, now=day + timedelta(hours=2), staff=None)
    give_back(session, barcodes[1], zone=ZONE, now=day + timedelta(days=1), staff=None)
    record_daily_counts(session, date(2026, 11, 20), ZONE)
    (payload,) = _daily(session)
    assert set(payload) == {"day", "titles", "copies", "loans", "returns", "on_loan"}
    assert (payload["loans"], payload["returns"], payload["on_loan"]) == (3, 1, 1)
    assert payload["titles"] == session.scalar(select(func.count()).select_from(Book))


def test_two_callers_at_once_record_the_day_once(app, session):
    """Shown to fail with the check moved before the write lock (and a 50 ms pause to widen
    the window): three events for the day."""
    demo.load(session, None)
    session.remove()

    def call():
        with app.app_context():
            try:
                return record_daily_counts(db.session, date(2026, 11, 21), ZONE)
            finally:
                db.session.remove()

    assert sorted(at_once([call, call, call])) == [False, False, True]
    assert [p["day"] for p in _daily(session)] == ["2026-11-21"]
