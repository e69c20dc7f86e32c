"""whatsapp window: index inbound messages by channel, sender and time

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 13:50:00

WhatsApp's 24-hour customer-service window runs from a family's last message on the channel;
every WhatsApp send asks for it (``max(received_at)`` by channel and sender), so that lookup
gets an index instead of a scan of the inbox.
"""

from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(
            'ix_inbound_channel_sender', ['channel', 'sender', 'received_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_channel_sender')
