"""inbox: detected language, translation origin and engine, needs an interpreter

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 12:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound_messages') as batch:
        batch.add_column(sa.Column('detected_language', sa.String(length=35), nullable=True))
        batch.add_column(sa.Column('translation_origin', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('translation_engine', sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column('needs_interpreter', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages') as batch:
        batch.drop_column('needs_interpreter')
        batch.drop_column('translation_engine')
        batch.drop_column('translation_origin')
        batch.drop_column('detected_language')
