"""hub: roll-ups off the push (a queue of accepted batches, applied just after)

Revision ID: 0012_hub_rollup_queue
Revises: 0011_hub_level_people
Create Date: 2026-11-29 12:40:00

A push inserts its events and one hub_rollup_queue row (the centre and the hub_event ids it
inserted); kiosk.hub.rollup applies queued batches to every roll-up and deletes their rows in
one transaction. A hub that already holds events has nothing queued: its roll-ups are current.
"""

import sqlalchemy as sa

import kiosk.db
from alembic import op

revision = "0012_hub_rollup_queue"
down_revision = "0011_hub_level_people"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "hub_rollup_queue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("centre_id", sa.Integer(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("queued_at", kiosk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["centre_id"], ["centre.id"], name=op.f("fk_hub_rollup_queue_centre_id_centre")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_rollup_queue")),
    )


def downgrade():
    # Apply what is queued first (`kiosk hub rollup`): the queue's batches are not in the roll-ups.
    op.drop_table("hub_rollup_queue")
