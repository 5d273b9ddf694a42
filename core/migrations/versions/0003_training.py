"""training runs, reproducibility certificates, evaluations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('trainingrun',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('dataset_version_id', sa.Integer(), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('task', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('primary_metric', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('feature_types', sa.JSON(), nullable=False),
    sa.Column('classes', sa.JSON(), nullable=True),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('candidates', sa.JSON(), nullable=False),
    sa.Column('finished_candidates', sa.JSON(), nullable=False),
    sa.Column('leaderboard', sa.JSON(), nullable=False),
    sa.Column('chosen_candidate', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('evaluation', sa.JSON(), nullable=True),
    sa.Column('baseline', sa.JSON(), nullable=True),
    sa.Column('environment', sa.JSON(), nullable=False),
    sa.Column('code_version', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('model_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('test_set_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('prediction_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('decision_threshold', sa.Float(), nullable=True),
    sa.Column('coding_threshold', sa.Float(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['dataset_version_id'], ['datasetversion.id'], ),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('trainingrun', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trainingrun_dataset_version_id'), ['dataset_version_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trainingrun_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trainingrun_status'), ['status'], unique=False)

    op.create_table('runcertificate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('original_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reproduced_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('differences', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['trainingrun.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('runcertificate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runcertificate_run_id'), ['run_id'], unique=False)

    op.create_table('runevaluation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('source_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['trainingrun.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('runevaluation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runevaluation_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('runevaluation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runevaluation_run_id'))

    op.drop_table('runevaluation')
    with op.batch_alter_table('runcertificate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runcertificate_run_id'))

    op.drop_table('runcertificate')
    with op.batch_alter_table('trainingrun', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trainingrun_status'))
        batch_op.drop_index(batch_op.f('ix_trainingrun_project_id'))
        batch_op.drop_index(batch_op.f('ix_trainingrun_dataset_version_id'))

    op.drop_table('trainingrun')
