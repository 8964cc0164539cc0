"""User data inside translated messages is escaped (issue 8, "Markup in translated messages";
docs/security.md).

Flask-Babel's lazy strings claim to be safe HTML, so a message built with
``_l("…%(title)s…", title=…)`` skipped autoescaping. Hostile activity titles, member names,
reward names and notices go through every message and page here; none may come out as markup.
Checked to fail without the safeguard: with kiosk.i18n._l back to flask_babel.lazy_gettext,
the card scan on the check-in screen returns the title as a live ``<b hx-get=…>`` element.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kiosk.checkin.services import poster_token, save_activity
from kiosk.db import utcnow, write_transaction
from kiosk.home.services import upsert_notice
from kiosk.members.services import card_token, register_member
from kiosk.points.models import PointsReason
from kiosk.points.services import award_points, save_reward
from kiosk.signing import TokenSigner
from tests.helpers import TEST_SIGNING_KEY, login, post

ZONE = ZoneInfo("Asia/Shanghai")
TITLE = "<b hx-get=/healthz hx-trigger=load>x"
REWARD = "<meta http-equiv=refresh content=0>"
NAME = "<i>李</i>"  # masked: <*****>
NOTICE = "<img src=x onerror=alert(1)>"
RAW = ("<b hx-get", "<meta http-equiv", "<img src=x", "<*", "<i>")


def assert_inert(label: str, html: str) -> None:
    for raw in RAW:
        assert raw not in html, (label, raw)


def seed(session):
    now = datetime.now(ZONE).replace(second=0, microsecond=0)
    activity = save_activity(
        session,
        None,
        title=TITLE,
        category="culture",
        description=TITLE,
        place=TITLE[:30],
        starts_at=(now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M"),
        ends_at=(now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        weekly=False,
        repeat_until="",
        capacity="",
        points="5",
        policy="repeatable",
        zone=ZONE,
        actor=None,
    )
    member = register_member(session, name=NAME, phone="13812345678", community=NOTICE[:20], age_band="70-79", consent=True, consent_version="t", actor=None)
    with write_transaction(session):
        award_points(session, member.id, 100, PointsReason.CHECKIN, reference="seed:1")
    reward = save_reward(session, None, name=REWARD, description=REWARD, cost=10, stock=5, actor=None)
    upsert_notice(session, key="n1", source="test", title=NOTICE, body=NOTICE, published_at=utcnow() - timedelta(minutes=1))
    session.commit()
    return activity, member, reward


def test_hostile_titles_names_rewards_and_notices_never_become_markup(app, client, session, make_staff):
    activity, member, reward = seed(session)
    make_staff("admin.a", role="admin")
    session.commit()
    card = card_token(member, TokenSigner(TEST_SIGNING_KEY, purpose="member-card"), "XH-CY-CY1")
    kiosk = client
    pages = {}
    for path in ("/", "/checkin", f"/checkin/{activity.id}", f"/checkin/{activity.id}/count", f"/checkin/{activity.id}/keypad"):
        pages[path] = kiosk.get(path).get_data(as_text=True)
    # The card scanned on the check-in screen: "Checked in: <name>, <title>." (a lazy message).
    scanned = post(kiosk, "/scan", {"code": card}, htmx=True, token_from=f"/checkin/{activity.id}")
    assert scanned.status_code == 200
    pages["scan on check-in screen"] = scanned.get_data(as_text=True)
    assert "&lt;b hx-get" in pages["scan on check-in screen"]  # shown, as text
    pages["keypad check-in"] = post(kiosk, f"/checkin/{activity.id}/phone", {"phone": "13900001111"}, htmx=True).get_data(as_text=True)
    # From home the card greets the member ("Hello, <name>") and opens 我的积分.
    pages["scan at home"] = post(kiosk, "/scan", {"code": card}, htmx=True, token_from="/").get_data(as_text=True)
    pages["/points"] = kiosk.get("/points").get_data(as_text=True)
    confirm = kiosk.get(f"/points/rewards/{reward.id}").get_data(as_text=True)
    pages["confirm"] = confirm
    key = re.search(r'name="request_key" value="(\w+)"', confirm).group(1)
    pages["redeem"] = post(kiosk, "/points/redeem", {"reward_id": str(reward.id), "request_key": key}, token_from="/points").get_data(as_text=True)
    # The phone page a poster opens, and its success message.
    phone = app.test_client(enrolled=False)
    poster = f"/c/{poster_token(activity, TokenSigner(TEST_SIGNING_KEY, purpose='checkin-code'), 'XH-CY-CY1')}"
    phone_page = phone.get(poster).get_data(as_text=True)
    pages["phone page"] = phone_page
    fields = dict(re.findall(r'name="(csrf_token|pass|activity)" value="([^"]*)"', phone_page))
    pages["phone done"] = phone.post("/c/checkin", data=fields | {"phone": "13700001111"}).get_data(as_text=True)
    # Staff pages.
    desk = app.test_client(enrolled=False)
    login(desk, "admin.a", "correct-horse-1")
    for path in (
        "/staff/",
        "/staff/activities/",
        f"/staff/activities/{activity.id}",
        f"/staff/activities/{activity.id}/poster",
        "/staff/activities/stats",
        "/staff/members/",
        f"/staff/members/{member.id}",
        f"/staff/members/{member.id}/card",
        "/staff/rewards/",
        f"/staff/rewards/{reward.id}",
        "/staff/rewards/redemptions",
        "/staff/audit",
    ):
        response = desk.get(path)
        assert response.status_code == 200, path
        pages[path] = response.get_data(as_text=True)
    for label, html in pages.items():
        assert_inert(label, html)
