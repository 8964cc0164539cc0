"""hub roll-ups for the dashboard: monthly figures, people per branch and month/year

Revision ID: 0009_hub_rollups
Revises: 0008_privacy_rights
Create Date: 2026-11-29 04:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009_hub_rollups"
down_revision = "0008_privacy_rights"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "hub_monthly",
        sa.Column("centre_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["centre_id"], ["centre.id"], name=op.f("fk_hub_monthly_centre_id_centre")),
        sa.PrimaryKeyConstraint("centre_id", "month", "type", name=op.f("pk_hub_monthly")),
    )
    op.create_table(
        "hub_people",
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["scope_id"], ["centre.id"], name=op.f("fk_hub_people_scope_id_centre")),
        sa.PrimaryKeyConstraint("scope_id", "kind", "start", "person", name=op.f("pk_hub_people")),
    )
    op.create_table(
        "hub_people_count",
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("people", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["scope_id"], ["centre.id"], name=op.f("fk_hub_people_count_scope_id_centre")),
        sa.PrimaryKeyConstraint("scope_id", "kind", "start", name=op.f("pk_hub_people_count")),
    )
    with op.batch_alter_table("hub_daily", schema=None) as batch_op:
        batch_op.create_index("ix_hub_daily_type_day", ["type", "day", "centre_id", "events"], unique=False)
    # A hub that already holds events: build the new roll-ups from the existing ones.
    if op.get_bind().dialect.name == "postgresql":
        month, year = "date_trunc('month', day)::date", "date_trunc('year', day)::date"
    else:
        month, year = "date(day, 'start of month')", "date(day, 'start of year')"
    op.execute(f"INSERT INTO hub_monthly (centre_id, month, type, events, points) SELECT centre_id, {month}, type, sum(events), sum(points) FROM hub_daily GROUP BY 1, 2, 3")
    op.execute(
        f"INSERT INTO hub_people (scope_id, kind, start, person) SELECT DISTINCT centre_id, 'm', {month}, person FROM hub_person_day "
        f"UNION SELECT DISTINCT centre_id, 'y', {year}, person FROM hub_person_day"
    )
    op.execute(
        "WITH RECURSIVE up (centre_id, scope_id) AS (SELECT id, id FROM centre UNION ALL "
        "SELECT up.centre_id, c.parent_id FROM up JOIN centre c ON c.id = up.scope_id WHERE c.parent_id IS NOT NULL) "
        f"INSERT INTO hub_people (scope_id, kind, start, person) SELECT DISTINCT up.scope_id, 'bm', {month}, p.person "
        "FROM hub_person_day p JOIN up ON up.centre_id = p.centre_id "
        f"UNION SELECT DISTINCT up.scope_id, 'by', {year}, p.person FROM hub_person_day p JOIN up ON up.centre_id = p.centre_id"
    )
    op.execute("INSERT INTO hub_people_count (scope_id, kind, start, people) SELECT scope_id, kind, start, count(*) FROM hub_people GROUP BY 1, 2, 3")


def downgrade():
    with op.batch_alter_table("hub_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_hub_daily_type_day")
    op.drop_table("hub_people_count")
    op.drop_table("hub_people")
    op.drop_table("hub_monthly")
