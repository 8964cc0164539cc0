"""hub: distinct people over any range of days as per-day bit strings (kiosk.hub.people_days)

Revision ID: 0013_hub_people_days
Revises: 0012_hub_rollup_queue
Create Date: 2026-11-29 12:30:00

hub_person_day gains ``counted`` (false for a new row, a partial index on the uncounted ones)
and, on PostgreSQL, a trigger that queues a counted row that is changed or deleted in
hub_person_day_gone. New tables hub_people_ordinal, hub_people_bits, hub_people_month_bits and hub_people_centre. On
PostgreSQL the rows a hub already holds are numbered and filed here in four set-based
statements (the existing rows are added as counted: no rewrite of hub_person_day); the time it
takes for 200 centres x a year is in docs/benchmarks.md.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013_hub_people_days"
down_revision = "0012_hub_rollup_queue"
branch_labels = None
depends_on = None

CHUNK = 2048
LETTERS = {"district": "d", "subdistrict": "s", "community": "c", "village": "v", "business": "b", "industry": "i"}

TRIGGER = """
CREATE FUNCTION hub_person_day_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.counted THEN
        INSERT INTO hub_person_day_gone (day, centre_id, person) VALUES (OLD.day, OLD.centre_id, OLD.person);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.counted := false;
        RETURN NEW;
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER hub_person_day_gone BEFORE UPDATE OF day, centre_id, person OR DELETE ON hub_person_day
    FOR EACH ROW EXECUTE FUNCTION hub_person_day_gone();
"""


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("hub_person_day", schema=None) as batch_op:
        # The rows already there are filed below (PostgreSQL); new rows default to uncounted.
        batch_op.add_column(sa.Column("counted", sa.Boolean(), server_default=sa.true() if postgres else sa.false(), nullable=False))
    if postgres:
        op.alter_column("hub_person_day", "counted", server_default=sa.false())
    op.create_index("ix_hub_person_day_pending", "hub_person_day", ["day"], postgresql_where=sa.text("NOT counted"), sqlite_where=sa.text("NOT counted"))
    op.create_table(
        "hub_person_day_gone",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("centre_id", sa.Integer(), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_person_day_gone")),
    )
    op.create_table(
        "hub_people_ordinal",
        sa.Column("scope", sa.String(length=24), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "person", name=op.f("pk_hub_people_ordinal")),
        sa.UniqueConstraint("scope", "ordinal", name=op.f("uq_hub_people_ordinal_scope_ordinal")),
    )
    for table, period in (("hub_people_bits", "day"), ("hub_people_month_bits", "month")):
        op.create_table(
            table,
            sa.Column("scope", sa.String(length=24), nullable=False),
            sa.Column(period, sa.Date(), nullable=False),
            sa.Column("chunk", sa.Integer(), nullable=False),
            sa.Column("bits", sa.LargeBinary().with_variant(postgresql.BIT(CHUNK), "postgresql"), nullable=False),
            sa.PrimaryKeyConstraint("scope", period, "chunk", name=op.f(f"pk_{table}")),
        )
    op.create_table(
        "hub_people_centre",
        sa.Column("centre_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["centre_id"], ["centre.id"], name=op.f("fk_hub_people_centre_centre_id_centre")),
        sa.PrimaryKeyConstraint("centre_id", name=op.f("pk_hub_people_centre")),
    )
    if postgres:
        op.execute(TRIGGER)
        backfill()


def backfill():
    """Each centre's scopes in the tree (as kiosk.hub.people_days.tree_scopes gives them), then
    every person numbered per scope, then the day bits."""
    letter = "CASE c.level " + " ".join(f"WHEN '{level}' THEN '{code}'" for level, code in LETTERS.items()) + " ELSE 'x' END"
    op.execute("SET LOCAL work_mem = '256MB'")
    op.execute(
        "CREATE TEMPORARY TABLE backfill_scope ON COMMIT DROP AS "
        "WITH RECURSIVE up (centre_id, branch_id, depth) AS (SELECT id, id, 0 FROM centre UNION ALL "
        "SELECT up.centre_id, c.parent_id, up.depth + 1 FROM up JOIN centre c ON c.id = up.branch_id WHERE c.parent_id IS NOT NULL AND up.depth < 64), "
        "branches AS (SELECT up.centre_id, up.branch_id FROM up WHERE up.depth > 0 OR EXISTS (SELECT 1 FROM centre k WHERE k.parent_id = up.centre_id)) "
        "SELECT id AS centre_id, 'c' || id AS scope FROM centre "
        "UNION SELECT centre_id, 'b' || branch_id FROM branches "
        f"UNION SELECT b.centre_id, 'l' || {letter} || b.branch_id FROM branches b JOIN centre c ON c.id = b.centre_id"
    )
    op.execute("INSERT INTO hub_people_centre (centre_id, scopes) SELECT centre_id, string_agg(scope, ' ' ORDER BY scope) FROM backfill_scope GROUP BY 1")
    op.execute(
        "INSERT INTO hub_people_ordinal (scope, person, ordinal) "
        "SELECT scope, person, row_number() OVER (PARTITION BY scope ORDER BY person) - 1 "
        "FROM (SELECT DISTINCT s.scope, p.person FROM hub_person_day p JOIN backfill_scope s USING (centre_id)) n"
    )
    op.execute(
        "INSERT INTO hub_people_bits (scope, day, chunk, bits) "
        f"SELECT s.scope, p.day, o.ordinal / {CHUNK}, bit_or(B'1'::bit({CHUNK}) >> (o.ordinal % {CHUNK})) "
        "FROM hub_person_day p JOIN backfill_scope s USING (centre_id) JOIN hub_people_ordinal o ON o.scope = s.scope AND o.person = p.person "
        "GROUP BY 1, 2, 3"
    )
    op.execute(
        "INSERT INTO hub_people_month_bits (scope, month, chunk, bits) "
        "SELECT scope, date_trunc('month', day)::date, chunk, bit_or(bits) FROM hub_people_bits GROUP BY 1, 2, 3"
    )
    for table in ("hub_person_day", "hub_people_ordinal", "hub_people_bits", "hub_people_month_bits"):
        op.execute(f"ANALYZE {table}")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER hub_person_day_gone ON hub_person_day")
        op.execute("DROP FUNCTION hub_person_day_gone()")
    op.drop_table("hub_people_centre")
    op.drop_table("hub_people_month_bits")
    op.drop_table("hub_people_bits")
    op.drop_table("hub_people_ordinal")
    op.drop_table("hub_person_day_gone")
    op.drop_index("ix_hub_person_day_pending", table_name="hub_person_day")
    with op.batch_alter_table("hub_person_day", schema=None) as batch_op:
        batch_op.drop_column("counted")
