"""staff web app: sign-in failures (throttling) and the families' folded search key

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 13:50:00.000000

``families.search_key`` is filled in for every existing family (the folded family id,
guardian and student names, :func:`gateway.domain.search_text.family_search_key`).
"""

from collections import defaultdict

from alembic import op
import sqlalchemy as sa
import gateway.storage.models
from gateway.domain.search_text import family_search_key


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BATCH = 500


def upgrade() -> None:
    op.create_table('sign_in_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('at', gateway.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_failures'))
    )
    with op.batch_alter_table('sign_in_failures', schema=None) as batch_op:
        batch_op.create_index('ix_sign_in_failures_key', ['scope', 'key', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sign_in_failures_at'), ['at'], unique=False)

    with op.batch_alter_table('families', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_key', sa.Text(), server_default='', nullable=False))
    _backfill_search_keys()


def _backfill_search_keys() -> None:
    """Every family's search key, from its id and its guardians' and students' names."""
    bind = op.get_bind()
    families = sa.table('families', sa.column('id'), sa.column('external_id'), sa.column('search_key'))
    guardians = sa.table('guardians', sa.column('id'), sa.column('family_id'), sa.column('name'))
    students = sa.table('students', sa.column('id'), sa.column('family_id'), sa.column('name'))
    names: dict[int, list[str]] = defaultdict(list)
    for table in (guardians, students):
        for family_id, name in bind.execute(
            sa.select(table.c.family_id, table.c.name).order_by(table.c.id)
        ):
            names[family_id].append(name or "")
    update = (
        sa.update(families)
        .where(families.c.id == sa.bindparam('fid'))
        .values(search_key=sa.bindparam('key'))
    )
    rows = [
        {'fid': fid, 'key': family_search_key(external_id, names.get(fid, []))}
        for fid, external_id in bind.execute(sa.select(families.c.id, families.c.external_id))
    ]
    for start in range(0, len(rows), BATCH):
        bind.execute(update, rows[start:start + BATCH])


def downgrade() -> None:
    with op.batch_alter_table('families', schema=None) as batch_op:
        batch_op.drop_column('search_key')

    with op.batch_alter_table('sign_in_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_failures_at'))
        batch_op.drop_index('ix_sign_in_failures_key')

    op.drop_table('sign_in_failures')
