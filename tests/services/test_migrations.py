from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kiosk.db import fts_table_names, include_object
from kiosk.extensions import db


def test_models_and_migrations_agree(app):
    """A model change without its migration fails here (what `kiosk db check` does)."""
    assert app.extensions["migrate"].configure_args["include_object"] is include_object
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True, "include_object": include_object})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_only_fts5_tables_are_left_out_of_the_comparison(app):
    """The filter skips the catalogue's FTS5 virtual and shadow tables and nothing else: without
    it the comparison reports exactly those tables as 'removed'."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True})
        diff = compare_metadata(context, db.metadata)
    removed = {entry[1].name for entry in diff if entry[0] == "remove_table"}
    assert removed and removed <= fts_table_names()
    assert len(diff) == len(removed)
