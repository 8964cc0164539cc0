"""Downloads: send_file with UTF-8 names, every export audited, no formula survives into a
spreadsheet, and the undo refusal never follows the Referer header."""

import csv
import io
import re
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from kiosk.checkin.models import CheckIn
from kiosk.staff.models import AuditEntry
from kiosk.web import FORMULA_PREFIXES
from tests.helpers import activity_id, create_activity, csrf_token, register

# What an attacker would type into a name, a community or a reason a desk PC later opens.
FORMULAS = {"name": '=HYPERLINK("http://evil.ex")', "community": "@SUM(A1:A9)", "reason": "+cmd|' /C calc'!A0", "title": "-2+3"}


@pytest.fixture
def staff_client(client, make_staff):
    from tests.helpers import login

    make_staff("li.staff", "correct-horse-1", "staff")
    login(client, "li.staff", "correct-horse-1")
    return client


def _seed_formulas(staff_client, session) -> int:
    aid = activity_id(create_activity(staff_client, title=FORMULAS["title"]))
    member = register(session, name=FORMULAS["name"], community=FORMULAS["community"])
    member_id = member.id
    session.commit()
    token = csrf_token(staff_client, f"/staff/activities/{aid}")
    checked = staff_client.post(f"/staff/activities/{aid}/checkin", data={"csrf_token": token, "person": str(member_id), "reason": FORMULAS["reason"]})
    assert checked.status_code == 302
    return aid


def _csv_cells(response) -> list[str]:
    text = response.data.decode("utf-8").lstrip("\ufeff")
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_csv_and_xlsx_exports_neutralise_formulas(staff_client, session):
    """Shown to fail without the safeguard: with csv_download writing cells unchanged and
    xlsx_download not marking strings as text, "@SUM(A1:A9)" and "+cmd|…" reach the CSV as
    they are, and openpyxl stores '=HYPERLINK(…)' as a formula cell (data_type "f")."""
    aid = _seed_formulas(staff_client, session)
    exports = {
        "members.csv": staff_client.get("/staff/members/export.csv"),
        "attendance.csv": staff_client.get(f"/staff/activities/{aid}/attendance.csv"),
    }
    for name, response in exports.items():
        cells = _csv_cells(response)
        assert not [c for c in cells if c.startswith(FORMULA_PREFIXES)], name
    assert "'@SUM(A1:A9)" in _csv_cells(exports["members.csv"]) and "'" + FORMULAS["name"] in _csv_cells(exports["members.csv"])
    assert "'+cmd|' /C calc'!A0" in _csv_cells(exports["attendance.csv"])
    for path in ("/staff/members/export.xlsx", f"/staff/activities/{aid}/attendance.xlsx"):
        sheet = load_workbook(io.BytesIO(staff_client.get(path).data)).active
        cells = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
        assert cells and [c.coordinate for c in cells if c.data_type == "f"] == [], path
    values = [c.value for row in load_workbook(io.BytesIO(staff_client.get(f"/staff/activities/{aid}/attendance.xlsx").data)).active.iter_rows() for c in row]
    assert FORMULAS["reason"] in values and FORMULAS["name"] in values  # kept as the text typed, marked as text


def _filename(response) -> str:
    disposition = response.headers["Content-Disposition"]
    match = re.search(r"filename\*=UTF-8''([^;]+)", disposition)
    return unquote(match.group(1)) if match else re.search(r'filename="?([^";]+)', disposition).group(1)


def test_downloads_are_attachments_with_utf8_names(staff_client, session):
    aid = activity_id(create_activity(staff_client, title="书法课"))
    member = register(session)
    member_id = member.id
    session.commit()
    attendance = staff_client.get(f"/staff/activities/{aid}/attendance.xlsx")
    assert attendance.headers["Content-Disposition"].startswith("attachment")
    assert _filename(attendance) == "签到名单-书法课.xlsx"
    assert attendance.headers["Cache-Control"] == "no-store"
    poster = staff_client.get(f"/staff/activities/{aid}/poster.png?download=1")
    assert poster.headers["Content-Disposition"].startswith("attachment") and _filename(poster) == "书法课-签到二维码.png"
    assert staff_client.get(f"/staff/activities/{aid}/poster.png").headers["Content-Disposition"].startswith("inline")
    card = staff_client.get(f"/staff/members/{member_id}/card.svg?download=1")
    assert card.headers["Content-Type"] == "image/svg+xml" and _filename(card) == f"会员二维码-{member_id:06d}-张建华.svg"
    members_csv = staff_client.get("/staff/members/export.csv")
    assert members_csv.headers["Content-Type"] == "text/csv; charset=utf-8" and _filename(members_csv) == "members.csv"


def test_every_export_is_audited(staff_client, session):
    aid = activity_id(create_activity(staff_client))
    for path in (
        "/staff/members/export.csv",
        "/staff/members/export.xlsx",
        f"/staff/activities/{aid}/attendance.csv",
        f"/staff/activities/{aid}/attendance.xlsx",
    ):
        assert staff_client.get(path).status_code == 200
    session.rollback()  # end this test's read snapshot to see the requests' commits
    audited = [(e.action, e.target, e.detail, e.actor_name) for e in session.scalars(select(AuditEntry).where(AuditEntry.action.like("%.export")))]
    assert audited == [
        ("member.export", "", "csv phones=masked", "li.staff"),
        ("member.export", "", "xlsx phones=masked", "li.staff"),
        ("checkin.export", f"activity:{aid}", "csv phones=masked", "li.staff"),
        ("checkin.export", f"activity:{aid}", "xlsx phones=masked", "li.staff"),
    ]


def test_a_refused_undo_goes_back_to_the_activity_never_to_the_referer(staff_client, session):
    """Shown to fail with the old `redirect(request.referrer or …)`: Location is the evil URL."""
    aid = activity_id(create_activity(staff_client))
    token = csrf_token(staff_client, f"/staff/activities/{aid}")
    staff_client.post(f"/staff/activities/{aid}/checkin", data={"csrf_token": token, "person": "13900002222", "reason": "小朋友"})
    session.rollback()
    checkin_id = session.scalar(select(CheckIn.id))
    evil = {"Referer": "https://evil.example/phish"}
    for _ in range(2):  # the second undo is refused: already undone
        answer = staff_client.post(f"/staff/activities/checkins/{checkin_id}/undo", data={"csrf_token": token, "reason": "重复登记"}, headers=evil)
    assert answer.status_code == 302 and answer.headers["Location"] == f"/staff/activities/{aid}"
    unknown = staff_client.post("/staff/activities/checkins/99999/undo", data={"csrf_token": token, "reason": "重复登记"}, headers=evil)
    assert unknown.status_code == 302 and unknown.headers["Location"] == "/staff/activities/"
