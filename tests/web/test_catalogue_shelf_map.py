"""The reading room's shelf map: staff upload a picture (checked as the other pictures are,
re-encoded), visitors see it on the book page with the book's shelf codes next to it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from kiosk.catalogue.models import Book
from kiosk.staff.models import AuditEntry
from tests.helpers import csrf_token

URL = "/staff/catalogue/shelf-map"


@pytest.fixture
def staff_client(staff_login):
    return staff_login("staff")  # desk staff, not only administrators, keep the map


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (232, 226, 218)).save(out, format="PNG")
    return out.getvalue()


def _upload(client, body: bytes, name: str = "map.png"):
    token = csrf_token(client, URL)
    return client.post(URL, data={"csrf_token": token, "picture": (io.BytesIO(body), name)}, content_type="multipart/form-data")


def _maps(app) -> list[Path]:
    return sorted((Path(app.instance_path) / "catalogue").glob("shelf-map-*"))


def test_uploaded_map_is_reencoded_and_shown_with_the_shelf_codes(staff_client, session, books, app):
    book = session.scalar(select(Book).where(Book.title == "红楼梦"))
    before = staff_client.get(f"/catalogue/book/{book.id}").get_data(as_text=True)
    assert "data-shelf-map>" in before and "data-shelf-map-photo" not in before  # the diagram until a map exists
    assert _upload(staff_client, _png(3000, 2000)).status_code == 302
    (stored,) = _maps(app)
    with Image.open(stored) as image:
        assert image.format == "JPEG" and max(image.size) == 1600
    page = staff_client.get(f"/catalogue/book/{book.id}").get_data(as_text=True)
    assert f"/catalogue/shelf-map/{stored.name}" in page and "data-shelf-map>" not in page
    codes = page.split("data-shelf-codes", 1)[1].split("</figcaption>", 1)[0]
    assert "本书在" in codes and '<strong class="shelf-code">I-' in codes
    picture = staff_client.get(f"/catalogue/shelf-map/{stored.name}")
    assert picture.status_code == 200 and picture.data[:2] == b"\xff\xd8"
    staff_page = staff_client.get(URL).get_data(as_text=True)
    assert f"/staff/catalogue/shelf-map/{stored.name}" in staff_page  # the desk PC is no enrolled kiosk
    assert staff_client.get(f"/staff/catalogue/shelf-map/{stored.name}").data[:2] == b"\xff\xd8"
    session.rollback()  # end the test's read snapshot (WAL)
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "catalogue.shelf_map")) is not None


def test_a_new_upload_replaces_the_old_map(staff_client, books, app):
    assert _upload(staff_client, _png(800, 600)).status_code == 302
    (first,) = _maps(app)
    assert _upload(staff_client, _png(600, 800)).status_code == 302
    (second,) = _maps(app)
    assert first.name != second.name
    assert staff_client.get(f"/catalogue/shelf-map/{first.name}").status_code == 404


@pytest.mark.parametrize(
    ("body", "name", "message"),
    [
        (b"MZ\x90\x00 not a picture", "map.png", "请上传 JPEG 或 PNG 图片"),
        (b"GIF89a" + b"\x00" * 100, "map.gif", "请上传 JPEG 或 PNG 图片"),
        (b"\x89PNG" + b"\x00" * (2 * 1024 * 1024 + 10), "big.png", "图片须小于 2 MB"),
        (None, "huge.png", "图片尺寸过大"),
    ],
)
def test_bad_pictures_are_refused_and_nothing_is_stored(staff_client, books, app, body, name, message):
    if body is None:
        out = io.BytesIO()
        Image.new("1", (9000, 9000)).save(out, format="PNG")  # small file, huge canvas
        body = out.getvalue()
    response = _upload(staff_client, body, name)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert _maps(app) == []


def test_no_file_is_a_400_not_a_500(staff_client, books):
    token = csrf_token(staff_client, URL)
    assert staff_client.post(URL, data={"csrf_token": token}, content_type="multipart/form-data").status_code == 400


def test_removing_the_map_brings_back_the_diagram(staff_client, session, books, app):
    assert _upload(staff_client, _png(800, 600)).status_code == 302
    token = csrf_token(staff_client, URL)
    assert staff_client.post(URL + "/remove", data={"csrf_token": token}).status_code == 302
    assert _maps(app) == []
    book = session.scalar(select(Book).where(Book.title == "红楼梦"))
    assert "data-shelf-map>" in staff_client.get(f"/catalogue/book/{book.id}").get_data(as_text=True)


def test_unknown_map_names_are_404(client, books):
    for name in ("shelf-map-000000000000.jpg", "..%2Fkiosk.sqlite3", "kiosk.sqlite3"):
        assert client.get(f"/catalogue/shelf-map/{name}").status_code == 404


def test_the_map_page_needs_a_login(client):
    assert client.get(URL).status_code in (302, 401, 403)
