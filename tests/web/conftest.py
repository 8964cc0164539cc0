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
