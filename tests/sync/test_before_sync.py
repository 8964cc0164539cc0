"""Features' nightly hooks (Feature.before_sync): `kiosk sync` runs them before it pushes, so
the reading hall's daily counts reach the hub once per day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from kiosk.features import registry
from kiosk.sync import services
from kiosk.sync.models import OutboxEvent
from kiosk.sync.outbox import once_a_day
from tests.sync.helpers import enrol, enrolment_code, exactly_once

ZONE = ZoneInfo("Asia/Shanghai")


def _daily(kiosk) -> list[dict]:
    return kiosk.run(lambda s: [e.payload for e in s.scalars(select(OutboxEvent).where(OutboxEvent.type == "catalogue.daily"))])


def test_a_sync_run_records_the_catalogues_daily_counts_once_per_day(hub_process, hub_app, hub_sql, make_kiosk):
    kiosk = make_kiosk()
    assert "catalogue" in [name for name, _hook in kiosk.run(lambda s: registry(kiosk.app).before_sync)]
    enrol(kiosk, hub_process.url, enrolment_code(hub_app, "XH-XX"))
    first = kiosk.cli("sync", "--quiet")
    assert first.returncode == 0, first.stderr
    yesterday = (datetime.now(ZONE) - timedelta(days=1)).date().isoformat()
    daily = _daily(kiosk)
    assert [p["day"] for p in daily] == [yesterday]
    assert set(daily[0]) == {"day", "titles", "copies", "loans", "returns", "on_loan"}
    # Sent in the same run: the hub holds it.
    assert exactly_once(hub_sql, "XH-XX") == (1, 1, 1, 1)
    assert hub_sql.execute("SELECT payload->>'day' FROM hub_event e JOIN centre c ON c.id = e.centre_id WHERE c.code = 'XH-XX'").fetchone()[0] == yesterday

    second = kiosk.cli("sync", "--quiet")  # the same night again, or "sync now" in the afternoon
    assert second.returncode == 0, second.stderr
    assert len(_daily(kiosk)) == 1
    assert exactly_once(hub_sql, "XH-XX") == (1, 1, 1, 1)


def test_the_hook_records_the_last_complete_local_day_and_only_once(make_kiosk):
    kiosk = make_kiosk()
    days: list[date] = []

    def record(session, day, zone):
        from kiosk.catalogue.services import record_daily_counts

        days.append(day)
        record_daily_counts(session, day, zone)

    # 17:30 UTC on the 3rd is 01:30 on the 4th in Shanghai: the complete day is the 3rd.
    hook = once_a_day("catalogue.daily", record, now=lambda: datetime(2026, 12, 3, 17, 30, tzinfo=UTC))
    for _ in range(2):
        assert kiosk.run(services.run_before_sync, [("catalogue", hook)]) == []
    assert days == [date(2026, 12, 3)]
    assert [p["day"] for p in _daily(kiosk)] == ["2026-12-03"]
    later = once_a_day("catalogue.daily", record, now=lambda: datetime(2026, 12, 4, 17, 30, tzinfo=UTC))
    kiosk.run(services.run_before_sync, [("catalogue", later)])
    assert [p["day"] for p in _daily(kiosk)] == ["2026-12-03", "2026-12-04"]


def test_nights_without_a_sync_are_caught_up_oldest_first_within_a_bound(make_kiosk):
    """The PC was off for three nights: the next run records each missed day, not only the
    last. A kiosk silent for months records the last CATCH_UP_DAYS days only. Shown to fail
    with the hook recording yesterday alone (the 4th to the 6th missing)."""
    from kiosk.catalogue.services import record_daily_counts
    from kiosk.sync.outbox import CATCH_UP_DAYS

    kiosk = make_kiosk()

    def at(moment):
        return once_a_day("catalogue.daily", record_daily_counts, now=lambda: moment)

    kiosk.run(services.run_before_sync, [("catalogue", at(datetime(2026, 12, 3, 17, 30, tzinfo=UTC)))])
    kiosk.run(services.run_before_sync, [("catalogue", at(datetime(2026, 12, 7, 17, 30, tzinfo=UTC)))])
    assert [p["day"] for p in _daily(kiosk)] == ["2026-12-03", "2026-12-04", "2026-12-05", "2026-12-06", "2026-12-07"]

    kiosk.run(services.run_before_sync, [("catalogue", at(datetime(2027, 3, 1, 17, 30, tzinfo=UTC)))])
    days = [p["day"] for p in _daily(kiosk)][5:]
    assert len(days) == CATCH_UP_DAYS
    assert days[0] == (date(2027, 3, 1) - timedelta(days=CATCH_UP_DAYS - 1)).isoformat() and days[-1] == "2027-03-01"


def test_a_failing_hook_is_reported_and_the_others_still_run(make_kiosk):
    kiosk = make_kiosk()
    ran = []

    def broken(session):
        raise RuntimeError("disk full")

    failures = kiosk.run(services.run_before_sync, [("broken", broken), ("fine", lambda s: ran.append(1))])
    assert failures == ["broken: disk full"] and ran == [1]
