"""booking: an index on booking_waitlist.person_key

Revision ID: 0014_booking_waitlist_person
Revises: 0013_hub_people_days
Create Date: 2026-11-29 13:30:00

Every booking asks whether the person has waitlist news to be shown; without an index SQLite
scanned the whole waitlist for it (issue 11 part 5). Since issue 11 part 8 it asks in the
booking's one plan read (kiosk.booking.services._PLAN_READ_SQL, under the write lock for a
keypad booking); take_waitlist_news and _take_promotions find the person's places through it too.
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
