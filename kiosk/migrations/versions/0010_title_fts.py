"""catalogue search: a title-only trigram FTS5 table, so a title count reads title doclists only

Revision ID: 0010_title_fts
Revises: 0009_hub_rollups
Create Date: 2026-11-29 05:20:00

A column filter on ``book_fts`` ({search_title}: "…") still walks each trigram's whole doclist
(every column's hits): 人民文学出版社 is in no title, yet its title count read the 12,351 books
whose publisher has it (~3–9 ms on 100,000 books). ``book_title_fts`` holds the two title
columns only (search_title, pinyin_title), external content over ``book`` like the others,
kept in step by its own triggers. SQLite only, like 0006_catalogue's index: the hub on
PostgreSQL searches no books.
"""

from alembic import op

revision = "0010_title_fts"
down_revision = "0009_hub_rollups"
branch_labels = None
depends_on = None


FTS_SQL = [
    """CREATE VIRTUAL TABLE book_title_fts USING fts5(
        search_title, pinyin_title, content='book', content_rowid='id', tokenize='trigram')""",
    # The books already there (an upgraded kiosk's catalogue).
    "INSERT INTO book_title_fts(book_title_fts) VALUES ('rebuild')",
    """CREATE TRIGGER book_title_ai AFTER INSERT ON book BEGIN
        INSERT INTO book_title_fts(rowid, search_title, pinyin_title) VALUES (new.id, new.search_title, new.pinyin_title);
    END""",
    """CREATE TRIGGER book_title_ad AFTER DELETE ON book BEGIN
        INSERT INTO book_title_fts(book_title_fts, rowid, search_title, pinyin_title)
            VALUES ('delete', old.id, old.search_title, old.pinyin_title);
    END""",
    """CREATE TRIGGER book_title_au AFTER UPDATE OF search_title, pinyin_title ON book BEGIN
        INSERT INTO book_title_fts(book_title_fts, rowid, search_title, pinyin_title)
            VALUES ('delete', old.id, old.search_title, old.pinyin_title);
        INSERT INTO book_title_fts(rowid, search_title, pinyin_title) VALUES (new.id, new.search_title, new.pinyin_title);
    END""",
]
DROP_FTS_SQL = [
    "DROP TRIGGER IF EXISTS book_title_au",
    "DROP TRIGGER IF EXISTS book_title_ad",
    "DROP TRIGGER IF EXISTS book_title_ai",
    "DROP TABLE IF EXISTS book_title_fts",
]


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        for statement in FTS_SQL:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for statement in DROP_FTS_SQL:
            op.execute(statement)
