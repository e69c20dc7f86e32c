"""outbox claim order: ix_outbox_due covers (status, due_at, id)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 17:30:00

A worker claims the oldest due messages in ``(due_at, id)`` order. SQLite's index on
``(status, due_at)`` ends with the rowid, so it gave that order; PostgreSQL's does not, and
with a broadcast's messages all due at the same moment it read and sorted every queued row for
each claim of 200 (150 ms at 500,000 queued rows, on disk): a 1,000,000-family broadcast
dispatched ever slower. With ``id`` in the index both databases walk it in order.
"""

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_outbox_due', table_name='outbox_messages')
    op.create_index('ix_outbox_due', 'outbox_messages', ['status', 'due_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_due', table_name='outbox_messages')
    op.create_index('ix_outbox_due', 'outbox_messages', ['status', 'due_at'], unique=False)
