"""Masked phones cannot be recovered by search (issue 8; docs/security.md).

Checked to fail without the safeguard: with search_members matching any digit run for staff
(as before), "3900" and a growing run from the middle found the member; without the limiter
the 31st search in a minute still answered 200; without the audit no member.search entry.
"""

from __future__ import annotations

from sqlalchemy import select

from kiosk.staff.models import AuditEntry
from tests.helpers import login, register


def found(client, query: str) -> bool:
    return "139****0002" in client.get("/staff/members/", query_string={"q": query}).get_data(as_text=True)


def test_staff_search_matches_whole_number_or_last_four_only(app, client, session, make_staff):
    register(session, name="张建华", phone="13900000002")
    session.commit()
    make_staff()
    login(client, "wang.li", "correct-horse-1")
    assert found(client, "13900000002")
    assert found(client, "0002")
    # Growing a run of digits from the middle finds nothing, so the masked digits stay hidden.
    for run in ("3900", "39000", "390000", "1390000", "13900000", "0000000", "00000002", "000000"):
        assert not found(client, run), run


def test_admin_search_still_matches_any_digit_run(app, client, session, make_staff):
    register(session, name="张建华", phone="13900000002")
    session.commit()
    make_staff("admin.a", role="admin")
    login(client, "admin.a", "correct-horse-1")
    assert "13900000002" in client.get("/staff/members/", query_string={"q": "3900000"}).get_data(as_text=True)


def test_searches_are_rate_limited_and_audited_with_phones_masked(app, client, session, make_staff):
    app.config["MEMBER_SEARCH_RATE_LIMIT"] = "5 per minute"
    make_staff()
    login(client, "wang.li", "correct-horse-1")
    statuses = [client.get("/staff/members/", query_string={"q": "13900000002"}).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    assert client.get("/staff/members/").status_code == 200  # the plain list is not limited
    details = session.scalars(select(AuditEntry.detail).where(AuditEntry.action == "member.search")).all()
    assert len(details) == 5 and all("139****0002" in d and "13900000002" not in d for d in details)
