"""batches: one row per POST /batches, and each prediction's batch and place in it

Revision ID: c8e1f0a2b3d4
Revises: b7d4e2f1a9c3
Create Date: 2026-12-02 06:30:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = 'c8e1f0a2b3d4'
down_revision = 'b7d4e2f1a9c3'
branch_labels = None
depends_on = None

Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade():
    op.create_table(
        "batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False, server_default=""),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("upload_url", sa.String(1024), nullable=True),
        sa.Column("callback_url", sa.String(2048), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False, index=True),
        sa.Column("cancelled_at", Timestamp, nullable=True),
        sa.Column("completed_at", Timestamp, nullable=True),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("webhook_status_code", sa.Integer(), nullable=True),
        sa.Column("webhook_error", sa.String(500), nullable=True),
        sa.Column("webhook_first_attempt_at", Timestamp, nullable=True),
    )
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("batch_index", sa.Integer(), nullable=True))
        batch.create_index("ix_predictions_batch_id_index", ["batch_id", "batch_index"])


def downgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.drop_index("ix_predictions_batch_id_index")
        batch.drop_column("batch_index")
        batch.drop_column("batch_id")
    op.drop_table("batches")
