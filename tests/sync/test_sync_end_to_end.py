"""A kiosk (SQLite) syncing to the hub (PostgreSQL, gunicorn with 2 workers) over 127.0.0.1."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select

from kiosk.checkin.models import Activity, CheckinMethod
from kiosk.checkin.services import CheckinRules, check_in
from kiosk.home.services import current_notices
from kiosk.hub.demo import notice_title
from kiosk.members.services import register_member
from kiosk.sync.models import OutboxEvent
from tests.helpers import open_activity_now
from tests.sync.helpers import enrol, enrolment_code, exactly_once, fill_outbox, rolled_up, sync

ZONE = ZoneInfo("Asia/Shanghai")
RULES = CheckinRules(zone=ZONE, device_id="kiosk-1", district_key="unused", repeat_minutes=5)


def _activity(session):
    activity = open_activity_now(session, place="二楼", minutes_ago=10)
    session.commit()
    return activity


def test_check_ins_reach_the_hub_once_as_pseudonyms_and_district_items_come_back(hub_process, hub_app, hub_sql, make_kiosk):
    kiosk = make_kiosk()
    other = make_kiosk("other")

    def visit(session, phone_a="13812345678", phone_b="13900001111"):
        activity = _activity(session)
        register_member(session, name="张建华", phone=phone_a, community="翠苑一区", age_band="70-79", consent=True, consent_version="2026-11", actor=None)
        session.commit()
        check_in(session, activity.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone=phone_a)
        check_in(session, activity.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone=phone_b)

    kiosk.run(visit)  # before enrolment: the phones wait on the kiosk, sealed on the way out
    enrol(kiosk, hub_process.url, enrolment_code(hub_app, "XH-CY-CY1"))
    enrol(other, hub_process.url, enrolment_code(hub_app, "XH-GD-JH"))
    other.run(visit, phone_a="13812345678", phone_b="13700002222")  # after enrolment: sealed at once
    sealed = other.run(lambda s: [e.payload for e in s.scalars(select(OutboxEvent)) if e.type == "checkin.created"])
    assert all("person_sealed" in p and "person_phone" not in p for p in sealed)

    report = sync(kiosk)
    assert report.ok, report.error
    assert (report.pushed, report.pending) == (3, 0)
    assert sync(other).ok
    assert exactly_once(hub_sql, "XH-CY-CY1") == (3, 3, 3, 3)
    assert exactly_once(hub_sql, "XH-GD-JH") == (3, 3, 3, 3)
    people = hub_sql.execute("SELECT person FROM hub_event WHERE type = 'checkin.created'").fetchall()
    assert all(len(p[0]) == 64 for p in people)
    # 张建华 came to both centres: one pseudonym, so three distinct people in the district.
    rolled_up()
    assert hub_sql.execute("SELECT count(DISTINCT person) FROM hub_person_day").fetchone()[0] == 3
    assert hub_sql.execute("SELECT count(*) FROM hub_event WHERE payload::text LIKE '%person_sealed%'").fetchone()[0] == 0

    # Pulled: the demo hub published a notice and an activity.
    pulled = kiosk.run(lambda s: (s.scalar(select(Activity).where(Activity.source == "district")), [n.title for n in current_notices(s)]))
    assert pulled[0] is not None and pulled[0].read_only and pulled[0].title == "全区志愿服务日"
    # The notice names the district activity's own day (seeded by kiosk.hub.demo), never 本周六.
    assert notice_title(pulled[0].starts_at.astimezone(ZONE).date()) in pulled[1]

    # Nothing new: a second run sends nothing and the hub holds the same rows.
    again = sync(kiosk)
    assert again.ok and again.pushed == 0 and again.batches == 0
    assert exactly_once(hub_sql, "XH-CY-CY1") == (3, 3, 3, 3)


def test_thousands_of_events_go_in_batches_of_at_most_500(hub_process, hub_app, hub_sql, make_kiosk):
    kiosk = make_kiosk()
    fill_outbox(kiosk, 1234)
    enrol(kiosk, hub_process.url, enrolment_code(hub_app, "XH-ZT-CDC"))
    progress = []
    report = sync(kiosk, progress=lambda done, total: progress.append((done, total)))
    assert report.ok and report.batches == 3 and report.pushed == 1234
    assert progress[0] == (0, 1234) and progress[-1] == (1234, 1234)
    assert exactly_once(hub_sql, "XH-ZT-CDC") == (1234, 1234, 1234, 1234)
    assert kiosk.count("SELECT count(*) FROM outbox_event WHERE sent_at IS NULL") == 0


def test_a_rolled_key_replaces_the_old_one_and_district_deletions_are_pulled(hub_process, hub_app, hub_sql, make_kiosk):
    """(Runs last in this module: it deletes the demo hub's publications.)"""
    from kiosk.checkin.models import ActivityStatus
    from kiosk.db import write_transaction
    from kiosk.extensions import db
    from kiosk.hub import services as hub_services
    from kiosk.sync import protocol
    from kiosk.sync import services as sync_services
    from tests.sync.helpers import client

    kiosk = make_kiosk()
    old = enrol(kiosk, hub_process.url, enrolment_code(hub_app, "XH-WX"))
    fill_outbox(kiosk, 5)
    assert sync(kiosk).ok
    assert kiosk.run(lambda s: s.scalar(select(Activity).where(Activity.source == "district")).status) == ActivityStatus.ACTIVE

    kiosk.run(sync_services.roll_key, client(kiosk))
    new_key = kiosk.run(lambda s: sync_services.sync_state(s).key_id)
    assert new_key != old.key_id
    fill_outbox(kiosk, 3)
    report = sync(kiosk)  # the first use of the new key retires the old one
    assert report.ok and report.pushed == 3
    stale = _client_for(hub_process.url, old)
    refused = stale.request("POST", protocol.API_PREFIX + "/hello")
    assert (refused.status, refused.error) == (401, "key_revoked")

    with write_transaction(db.session):
        hub_services.publish(db.session, "activity", "demo-activity", None, deleted=True)
        hub_services.publish(db.session, "notice", "demo-notice", None, deleted=True)
    report = sync(kiosk)
    assert report.ok and report.pulled == 2
    activity, notices = kiosk.run(lambda s: (s.scalar(select(Activity).where(Activity.source == "district")).status, [n.title for n in current_notices(s)]))
    assert activity == ActivityStatus.CANCELLED  # check-ins may point at it: cancelled, not deleted
    assert not [n for n in notices if n.endswith("全区志愿服务日")]
    assert exactly_once(hub_sql, "XH-WX") == (8, 8, 8, 8)


def _client_for(url, enrolled):
    from kiosk.sync.client import HubClient

    return HubClient(url, enrolled.key_id, enrolled.key_secret, app_version="test")
