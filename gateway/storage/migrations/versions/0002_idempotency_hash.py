"""broadcasts.idempotency_hash: the request an Idempotency-Key was first used with

Revision ID: 0002_idempotency_hash
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_idempotency_hash"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("idempotency_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("idempotency_hash")
