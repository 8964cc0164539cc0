"""The staff menu and dashboard are built from what the features registered."""

from __future__ import annotations

import re

from kiosk.features import registry
from tests.helpers import login, post


def _figure(html: str, label: str) -> str:
    match = re.search(rf"<dt>{re.escape(label)}</dt>\s*<dd>(?:<a [^>]*>)?([^<]+)", html)
    assert match, f"no figure {label!r}"
    return match.group(1).strip()


def test_dashboard_cards_show_todays_figures_and_change_with_the_day(app, client, session, make_staff, open_activity):
    make_staff("wang.li", "correct-horse-1", "staff")
    login(client, "wang.li", "correct-horse-1")
    before = client.get("/staff/").get_data(as_text=True)
    assert _figure(before, "今日签到（人次）") == "0"
    assert _figure(before, "正在签到的活动") == "1"
    # A visitor checks in on the kiosk keypad (another browser): today's figure moves.
    kiosk = app.test_client()
    kiosk.get(f"/checkin/{open_activity.id}")
    response = post(kiosk, f"/checkin/{open_activity.id}/phone", {"phone": "13812345678"}, htmx=True, token_from=f"/checkin/{open_activity.id}")
    assert response.status_code == 200
    after = client.get("/staff/").get_data(as_text=True)
    assert _figure(after, "今日签到（人次）") == "1"
    for title in ("活动签到", "会员", "积分与兑换"):
        assert f">{title}</h2>" in after
    # Admin-only card and menu entries stay hidden from a staff role.
    assert "系统管理" not in after and "/staff/audit" not in after


def test_admin_sees_the_admin_card_and_menu_from_the_registry(app, client, make_staff):
    make_staff("boss", "correct-horse-1", "admin")
    login(client, "boss", "correct-horse-1")
    html = client.get("/staff/").get_data(as_text=True)
    assert "系统管理" in html
    nav = html[html.index('class="staff-nav"') : html.index("</nav>")]
    hrefs = re.findall(r'href="([^"]+)"', nav)
    with app.test_request_context():
        from flask import url_for

        # The menu from the registry, then the user's own name (a link to change their password).
        assert hrefs == [url_for("staff.dashboard")] + [url_for(link.endpoint) for link in registry(app).menu] + [url_for("staff.password")]
