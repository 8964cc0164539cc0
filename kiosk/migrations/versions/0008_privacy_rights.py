"""privacy rights: a returned loan older than the retention period loses its member

Revision ID: 0008_privacy_rights
Revises: 0007_sync
Create Date: 2026-12-01 10:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0008_privacy_rights'
down_revision = '0007_sync'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('book_loan', schema=None) as batch_op:
        batch_op.alter_column('member_id', existing_type=sa.Integer(), nullable=True)


def downgrade():
    # Loans whose member was purged cannot get one back: they go with the downgrade.
    op.execute("DELETE FROM book_loan WHERE member_id IS NULL")
    with op.batch_alter_table('book_loan', schema=None) as batch_op:
        batch_op.alter_column('member_id', existing_type=sa.Integer(), nullable=False)
