"""replies: the prompt a reply answers, recorded / suggested answer, note, possible opt-out;
guardians: time zone assumed

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 13:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound_messages') as batch:
        batch.add_column(sa.Column('survey_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('question_id', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('recorded_answer', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('suggested_answer', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('note', sa.Text(), nullable=True))
        batch.add_column(sa.Column('note_data', sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column('possible_opt_out', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table('guardians') as batch:
        batch.add_column(
            sa.Column('timezone_assumed', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('guardians') as batch:
        batch.drop_column('timezone_assumed')
    with op.batch_alter_table('inbound_messages') as batch:
        batch.drop_column('possible_opt_out')
        batch.drop_column('note_data')
        batch.drop_column('note')
        batch.drop_column('suggested_answer')
        batch.drop_column('recorded_answer')
        batch.drop_column('question_id')
        batch.drop_column('survey_id')
