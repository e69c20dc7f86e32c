"""channel consent: opt-out and invalid marks per endpoint and channel

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 13:50:00

Existing marks on ``endpoints`` are kept as they are and keep meaning "on every channel that
reaches this address" (they were set when one address had one channel), so nobody who opted out
is written to again. From now on a channel's STOP, block or bounce is kept per channel in
``endpoint_consents``.
"""

from alembic import op
import sqlalchemy as sa
import gateway.storage.models


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('endpoint_consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('opted_out', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('opted_out_at', gateway.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('invalid', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('invalid_reason', sa.String(length=200), nullable=True),
    sa.Column('updated_at', gateway.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_endpoint_consents_endpoint_id_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoint_consents')),
    sa.UniqueConstraint('endpoint_id', 'channel', name=op.f('uq_endpoint_consents_endpoint_id'))
    )
    with op.batch_alter_table('endpoint_consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoint_consents_endpoint_id'), ['endpoint_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('endpoint_consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoint_consents_endpoint_id'))
    op.drop_table('endpoint_consents')
