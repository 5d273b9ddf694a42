"""datasets, versions, data contracts; open project per login

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dataset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'name')
    )
    with op.batch_alter_table('dataset', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_project_id'), ['project_id'], unique=False)

    op.create_table('datasetversion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('parquet_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('parquet_bytes', sa.Integer(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('columns', sa.Integer(), nullable=False),
    sa.Column('schema', sa.JSON(), nullable=False),
    sa.Column('sensitive_columns', sa.JSON(), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('profile', sa.JSON(), nullable=False),
    sa.Column('source_filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('source_format', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('source_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('read_notes', sa.JSON(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ),
    sa.ForeignKeyConstraint(['parent_id'], ['datasetversion.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'number'),
    sa.UniqueConstraint('dataset_id', 'sha256')
    )
    with op.batch_alter_table('datasetversion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasetversion_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_datasetversion_sha256'), ['sha256'], unique=False)

    op.create_table('datacontract',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('based_on_version_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['based_on_version_id'], ['datasetversion.id'], ),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'number')
    )
    with op.batch_alter_table('datacontract', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datacontract_dataset_id'), ['dataset_id'], unique=False)

    with op.batch_alter_table('loginsession', schema=None) as batch_op:
        batch_op.add_column(sa.Column('project_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_loginsession_project_id_project', 'project', ['project_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('loginsession', schema=None) as batch_op:
        batch_op.drop_constraint('fk_loginsession_project_id_project', type_='foreignkey')
        batch_op.drop_column('project_id')

    with op.batch_alter_table('datacontract', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datacontract_dataset_id'))

    op.drop_table('datacontract')
    with op.batch_alter_table('datasetversion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasetversion_sha256'))
        batch_op.drop_index(batch_op.f('ix_datasetversion_dataset_id'))

    op.drop_table('datasetversion')
    with op.batch_alter_table('dataset', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_project_id'))

    op.drop_table('dataset')
