"""trace id per prediction (OpenTelemetry), and webhook attempts indexed by time for /metrics

Revision ID: d9f2a1b3c4e5
Revises: c8e1f0a2b3d4
Create Date: 2026-12-02 06:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'd9f2a1b3c4e5'
down_revision = 'c8e1f0a2b3d4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("trace_id", sa.String(32), nullable=True))
    op.create_index("ix_webhook_deliveries_attempted_at", "webhook_deliveries", ["attempted_at"])


def downgrade():
    op.drop_index("ix_webhook_deliveries_attempted_at", table_name="webhook_deliveries")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("trace_id")
