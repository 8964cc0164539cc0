"""Demo staff accounts (printed by `make run`; a real centre deactivates them)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.staff.models import StaffUser
from kiosk.staff.services import create_staff_user

# Demo accounts only: `make run` prints them. A real centre removes them and adds its own.
DEMO_ACCOUNTS = [
    ("demo-admin", "kiosk-demo-admin", "admin"),
    ("demo-staff", "kiosk-demo-staff", "staff"),
]


def load(session: Session, zone: ZoneInfo) -> dict[str, int]:
    existing = set(session.scalars(select(StaffUser.username)))
    accounts = 0
    for username, password, role in DEMO_ACCOUNTS:
        if username not in existing:
            create_staff_user(session, username, password, role, display_name=username)
            accounts += 1
    return {"accounts": accounts}
