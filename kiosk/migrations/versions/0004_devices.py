"""kiosk devices, staff session version

Revision ID: 0004_devices
Revises: 0003_checkin
Create Date: 2026-12-01 09:00:00

"""
from alembic import op
import sqlalchemy as sa

import kiosk.db


# revision identifiers, used by Alembic.
revision = '0004_devices'
down_revision = '0003_checkin'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('kiosk_device',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=True),
    sa.Column('enrol_code_hash', sa.String(length=64), nullable=True),
    sa.Column('enrol_expires_at', kiosk.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', kiosk.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('enrolled_at', kiosk.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', kiosk.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kiosk_device')),
    sa.UniqueConstraint('enrol_code_hash', name=op.f('uq_kiosk_device_enrol_code_hash')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_kiosk_device_secret_hash'))
    )
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_column('session_version')
    op.drop_table('kiosk_device')
