"""The district dashboard on the hub (PostgreSQL): logins, branches, figures, export."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from kiosk.centres.models import Centre
from kiosk.extensions import db
from kiosk.hub import rollup, services
from kiosk.hub.models import HubCentre, HubKey
from kiosk.sync.protocol import seal
from tests.helpers import csrf_token
from tests.sync.conftest import HUB_PUBLIC_KEY


def _login(client, username, password):
    token = csrf_token(client, "/district/login")
    return client.post("/district/login", data={"username": username, "password": password, "csrf_token": token})


def _events(centre_code, phones, *, when):
    key = services.enrol(db.session, services.create_enrolment(db.session, centre_code))
    hub_key = db.session.scalar(select(HubKey).where(HubKey.key_id == key.key_id))
    events = [
        {
            "seq": i + 1,
            "event_id": str(uuid.uuid4()),
            "type": "checkin.created",
            "schema_version": 1,
            "occurred_at": when.isoformat(),
            "payload": {"points": 5, "person_sealed": seal(HUB_PUBLIC_KEY, phone)},
        }
        for i, phone in enumerate(phones)
    ]
    services.ingest(db.session, hub_key, events, _secrets())
    db.session.commit()


def _secrets():
    from flask import current_app

    return services.secrets_from_config(current_app.config)


@pytest.fixture
def figures(hub_app):
    """Once per module (its database is shared by the module's tests)."""
    from kiosk.hub.models import HubDaily

    if db.session.scalar(select(HubDaily).limit(1)) is not None:
        return hub_app
    when = datetime.now(UTC) - timedelta(minutes=5)
    _events("XH-CY-CY1", ["13800000001", "13800000002", "13800000001"], when=when)
    _events("XH-GD-JH", ["13800000001", "13800000003"], when=when)
    # 嘉荷 last pushed three days ago: silent.
    jh = db.session.scalar(select(Centre).where(Centre.code == "XH-GD-JH"))
    db.session.get(HubCentre, jh.id).last_push_at = datetime.now(UTC) - timedelta(days=3)
    db.session.commit()
    rollup.catch_up(db.session)  # the tests below also read the figures without the pages
    return hub_app


def test_pages_need_a_district_login(hub_app):
    client = hub_app.test_client()
    assert client.get("/district/").status_code == 302
    assert _login(client, "district", "wrong-password!").status_code == 401
    assert _login(client, "district", "district-demo-1").status_code == 302
    assert client.get("/district/").status_code == 200


def test_the_district_sees_the_tree_with_figures_and_silent_centres(figures):
    client = figures.test_client()
    _login(client, "district", "district-demo-1")
    html = client.get("/district/?period=month").get_data(as_text=True)  # speed: bench/sync.py
    assert "西湖区党群服务中心" in html and "双浦镇党群服务中心" in html
    rows = {line.split('data-centre="')[1].split('"')[0]: line for line in html.split("<tr") if 'data-centre="' in line}
    assert 'class="silent"' in "<tr" + rows["XH-GD-JH"] and 'class="silent"' not in "<tr" + rows["XH-CY-CY1"]
    assert "<td>3</td><td>2</td>" in rows["XH-CY-CY1"]  # 3 attendances (人次), 2 people
    # Total: 5 attendances, 3 distinct people (13800000001 went to both centres, counted once).
    assert "<th>5</th><th>3</th>" in html.split("<tfoot>")[1]
    assert "<svg" in html and "<rect" in html


def test_a_sub_district_admin_sees_only_their_branch(figures):
    client = figures.test_client()
    _login(client, "cuiyuan", "cuiyuan-demo-1")
    html = client.get("/district/").get_data(as_text=True)
    assert 'data-centre="XH-CY"' in html and 'data-centre="XH-CY-CY1"' in html
    assert 'data-centre="XH-GD-JH"' not in html and 'data-centre="XH"' not in html
    assert client.get("/district/centres").status_code == 403
    csv = client.get("/district/export.csv").get_data(as_text=True)
    assert "XH-CY-CY1" in csv and "XH-GD-JH" not in csv


def test_export_as_csv_and_xlsx(figures):
    client = figures.test_client()
    _login(client, "district", "district-demo-1")
    csv = client.get("/district/export.csv?period=year").get_data(as_text=True)
    assert csv.startswith("\ufeff") and "XH-CY-CY1" in csv
    workbook = load_workbook(io.BytesIO(client.get("/district/export.xlsx").data))
    values = [row for row in workbook.active.iter_rows(values_only=True)]
    assert any(r[0] == "XH-CY-CY1" and r[3] == 3 for r in values)


def test_district_admin_creates_an_enrolment_code_and_revokes_keys(hub_app):
    client = hub_app.test_client()
    _login(client, "district", "district-demo-1")
    token = csrf_token(client, "/district/centres")
    client.post("/district/centres/XH-LX/enrolment", data={"csrf_token": token})
    html = client.get("/district/centres").get_data(as_text=True)
    assert "XH-LX" in html
    issued = [line for line in html.splitlines() if "kiosk enrol" in line]
    assert issued, "the new code is shown once"
    import re

    code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", issued[0]).group(0)
    key = services.enrol(db.session, code)
    db.session.commit()
    with pytest.raises(services.AuthError):
        services.enrol(db.session, code)  # one time only
    db.session.rollback()
    client.post("/district/centres/XH-LX/revoke", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.scalar(select(HubKey).where(HubKey.key_id == key.key_id)).status == "revoked"


def test_distinct_people_kept_at_ingest_match_a_count_over_the_days(figures):
    """A calendar month or year reads the counts kept at ingest (per centre and per branch); any
    other range counts hub_person_day. Both must agree: the same days, one day longer (empty)."""
    from zoneinfo import ZoneInfo

    from kiosk.hub import dashboard
    from kiosk.hub.models import HubUser

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    month = (today.replace(day=1), (today.replace(day=1) + timedelta(days=32)).replace(day=1))
    year = (today.replace(month=1, day=1), today.replace(year=today.year + 1, month=1, day=1))
    seen = {}
    for username in ("district", "cuiyuan"):
        user = db.session.scalar(select(HubUser).where(HubUser.username == username))
        for start, end in (month, year):
            for level in ("", "community"):
                kept = dashboard.report(db.session, user, start, end, level=level)
                counted = dashboard.report(db.session, user, start - timedelta(days=1), end, level=level)
                assert [(r.centre.code, dict(r.figures)) for r in kept.rows] == [(r.centre.code, dict(r.figures)) for r in counted.rows]
                assert kept.totals == counted.totals
                seen[(username, level, start)] = kept.totals["people"]
    assert seen[("district", "", month[0])] == seen[("district", "", year[0])] == 3
    assert seen[("cuiyuan", "", month[0])] == 2
