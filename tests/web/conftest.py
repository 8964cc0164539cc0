"""Fixtures the web tests share (the catalogue's pages among them)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from tests.helpers import login


@pytest.fixture
def books(session):
    """The demo catalogue (kiosk.catalogue.demo: books, copies, shelves) in the test database."""
    from kiosk.catalogue import demo

    demo.load(session, None)
    return session


@pytest.fixture
def haircut(session):
    """理发 every day 09:00–11:30, 20-minute slots, 2 chairs (so tomorrow always has slots).
    No test asserts on its place (the booking pages, their audit and the page cache's tests share it)."""
    from kiosk.booking import services

    service = services.save_service(session, None, name="理发", prefix="A", category="haircut", place="嘉荷社区 一楼", actor=None)
    for weekday in range(7):
        services.save_template(session, service, weekday=weekday, starts="09:00", ends="11:30", slot_minutes=20, capacity=2, actor=None)
    return service


@pytest.fixture
def legal(session):
    """法律咨询 every day 14:00–17:00, 30-minute slots, one place each."""
    from kiosk.booking import services

    service = services.save_service(session, None, name="法律咨询", prefix="C", category="legal", actor=None)
    for weekday in range(7):
        services.save_template(session, service, weekday=weekday, starts="14:00", ends="17:00", slot_minutes=30, capacity=1, actor=None)
    return service


@pytest.fixture
def staff_login(client, make_staff) -> Callable[[str], FlaskClient]:
    """staff_login(role) logs ``client`` in as wang.li with that role and returns it."""

    def log_in(role: str = "admin") -> FlaskClient:
        make_staff("wang.li", "correct-horse-1", role)
        login(client, "wang.li", "correct-horse-1")
        return client

    return log_in


@pytest.fixture
def staff_client(staff_login) -> FlaskClient:
    """The client logged in as an administrator (files that need another role override this)."""
    return staff_login("admin")
