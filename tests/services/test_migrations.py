from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kiosk.extensions import db


def test_models_and_migrations_agree(app):
    """A model change without its migration fails here (what `kiosk db check` does)."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == []
