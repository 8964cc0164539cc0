"""booking: an index on booking_waitlist.person_key

Revision ID: 0014_booking_waitlist_person
Revises: 0013_hub_people_days
Create Date: 2026-11-29 13:30:00

Every booking asks, before the write lock, whether the person has waitlist news to be shown
(kiosk.booking.services._PERSON_STATE_SQL); without an index SQLite scanned the whole
waitlist for it (issue 11 part 5).
"""

from alembic import op

revision = "0014_booking_waitlist_person"
down_revision = "0013_hub_people_days"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_booking_waitlist_person_key"), "booking_waitlist", ["person_key"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_booking_waitlist_person_key"), table_name="booking_waitlist")
