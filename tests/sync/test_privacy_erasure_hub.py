"""`kiosk privacy erase` reaches the district: the hub (PostgreSQL, gunicorn) forgets the link
between the person's pseudonym and the centre's records, and its figures stay the same."""

from __future__ import annotations

import hashlib
import hmac
from zoneinfo import ZoneInfo

from kiosk.checkin.models import CheckinMethod
from kiosk.checkin.services import CheckinRules, check_in
from kiosk.members.services import register_member
from kiosk.privacy_rights.services import erase_person
from tests.helpers import open_activity_now
from tests.sync.conftest import HUB_PSEUDONYM_KEY
from tests.sync.helpers import enrol, enrolment_code, exactly_once, rolled_up, sync

ZONE = ZoneInfo("Asia/Shanghai")
RULES = CheckinRules(zone=ZONE, device_id="kiosk-1", district_key="unused", repeat_minutes=5)
PHONE, OTHER = "13812345678", "13900001111"


def pseudonym(phone: str) -> str:
    return hmac.new(HUB_PSEUDONYM_KEY.encode(), phone.encode(), hashlib.sha256).hexdigest()


def mentions(hub_sql, person: str) -> int:
    """Rows anywhere in the hub's event tables that still carry the pseudonym."""
    return sum(
        hub_sql.execute(sql, (person, f"%{person}%")).fetchone()[0]
        for sql in (
            "SELECT count(*) FROM hub_event WHERE person = %s OR payload::text LIKE %s",
            "SELECT count(*) FROM hub_conflict WHERE payload->>'person' = %s OR payload::text LIKE %s",
            "SELECT count(*) FROM hub_person_day WHERE person = %s OR person LIKE %s",
        )
    )


def figures(hub_sql) -> tuple:
    events = hub_sql.execute("SELECT type, sum(events), sum(points) FROM hub_daily GROUP BY type ORDER BY type").fetchall()
    people = hub_sql.execute("SELECT count(DISTINCT person), count(*) FROM hub_person_day").fetchone()
    return tuple(events), tuple(people)


def test_an_erasure_makes_the_hub_forget_the_pseudonym_and_keeps_the_district_figures(hub_process, hub_app, hub_sql, make_kiosk):
    kiosk = make_kiosk()

    def visit(session):
        register_member(session, name="张建华", phone=PHONE, community="翠苑一区", age_band="70-79", consent=True, consent_version="2026-11", actor=None)
        session.commit()
        first = open_activity_now(session, title="书法课", minutes_ago=10)
        second = open_activity_now(session, title="四点半课堂", minutes_ago=10)
        session.commit()
        check_in(session, first.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone=PHONE)  # before enrolment: sealed on the way out
        check_in(session, first.id, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone=OTHER)
        return second.id

    second = kiosk.run(visit)
    enrol(kiosk, hub_process.url, enrolment_code(hub_app, "XH-CY-CY1"))
    kiosk.run(lambda s: check_in(s, second, rules=RULES, method=CheckinMethod.KIOSK_PHONE, phone=PHONE))  # after: sealed at once
    assert sync(kiosk).ok
    person = pseudonym(PHONE)
    assert hub_sql.execute("SELECT count(*) FROM hub_event WHERE person = %s", (person,)).fetchone()[0] == 3  # registration, two check-ins
    rolled_up()
    assert mentions(hub_sql, person) > 0
    before = figures(hub_sql)

    kiosk.run(lambda s: erase_person(s, PHONE, zone=ZONE))
    report = sync(kiosk)
    assert report.ok and report.pushed == 1, report.error
    assert exactly_once(hub_sql, "XH-CY-CY1") == (5, 5, 5, 5)
    rolled_up()
    assert mentions(hub_sql, person) == 0
    # The other visitor keeps their pseudonym; the figures (events, points, distinct people) stay.
    assert hub_sql.execute("SELECT count(*) FROM hub_event WHERE person = %s", (pseudonym(OTHER),)).fetchone()[0] == 1
    events, people = figures(hub_sql)
    assert people == before[1]
    assert [e for e in events if e[0] != "privacy.erased"] == list(before[0])
    # The person's records still hang together (one token), but nothing leads back to the phone.
    tokens = hub_sql.execute("SELECT DISTINCT person FROM hub_event WHERE person LIKE 'erased-%%'").fetchall()
    assert len(tokens) == 1
    assert hub_sql.execute("SELECT count(*) FROM hub_event WHERE person = %s", (tokens[0][0],)).fetchone()[0] == 4  # with the erasure itself

    # The hub restored from an older backup asks for everything again: the erased person's
    # old events arrive once more. The sealed one is a duplicate (payload_hash unchanged), the
    # ones scrubbed on the kiosk are set aside as conflicts without a person: the pseudonym
    # does not come back and nothing is counted twice.
    hub_sql.execute("UPDATE hub_centre SET acked_seq = 0")
    again = sync(kiosk)
    assert again.ok, again.error
    assert exactly_once(hub_sql, "XH-CY-CY1") == (5, 5, 5, 5)
    assert mentions(hub_sql, person) == 0
