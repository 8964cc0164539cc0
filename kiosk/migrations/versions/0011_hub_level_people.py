"""hub: distinct people per branch and level of centre (the dashboard's level filter)

Revision ID: 0011_hub_level_people
Revises: 0010_title_fts
Create Date: 2026-11-29 10:00:00

No schema change: hub_people and hub_people_count gain rows of new kinds ("l" + the level's
letter + "m" or "y", kiosk.hub.services.level_kind), built here from the centres' own month and
year rows for a hub that already holds events; ingest keeps them from then on.
"""

from alembic import op

revision = "0011_hub_level_people"
down_revision = "0010_title_fts"
branch_labels = None
depends_on = None

LETTERS = {"district": "d", "subdistrict": "s", "community": "c", "village": "v", "business": "b", "industry": "i"}


def upgrade():
    letter = "CASE c.level " + " ".join(f"WHEN '{level}' THEN '{code}'" for level, code in LETTERS.items()) + " ELSE 'x' END"
    op.execute(
        "WITH RECURSIVE up (centre_id, scope_id, depth) AS (SELECT id, id, 0 FROM centre UNION ALL "
        "SELECT up.centre_id, c.parent_id, up.depth + 1 FROM up JOIN centre c ON c.id = up.scope_id WHERE c.parent_id IS NOT NULL AND up.depth < 64) "
        "INSERT INTO hub_people (scope_id, kind, start, person) "
        f"SELECT DISTINCT up.scope_id, 'l' || {letter} || p.kind, p.start, p.person "
        "FROM hub_people p JOIN centre c ON c.id = p.scope_id JOIN up ON up.centre_id = p.scope_id WHERE p.kind IN ('m', 'y')"
    )
    op.execute(
        "INSERT INTO hub_people_count (scope_id, kind, start, people) SELECT scope_id, kind, start, count(*) FROM hub_people WHERE kind LIKE 'l%' GROUP BY 1, 2, 3"
    )


def downgrade():
    op.execute("DELETE FROM hub_people_count WHERE kind LIKE 'l%'")
    op.execute("DELETE FROM hub_people WHERE kind LIKE 'l%'")
