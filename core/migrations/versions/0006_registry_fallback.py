"""registry fallback and one production version

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_fallback', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index('uq_modelversion_one_production', ['model_id'], unique=True, sqlite_where=sa.text("status = 'production'"), postgresql_where=sa.text("status = 'production'"))


def downgrade() -> None:
    with op.batch_alter_table('modelversion', schema=None) as batch_op:
        batch_op.drop_index('uq_modelversion_one_production', sqlite_where=sa.text("status = 'production'"), postgresql_where=sa.text("status = 'production'"))
        batch_op.drop_column('is_fallback')

