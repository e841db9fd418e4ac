"""index webhook delivery attempts by time, for /metrics' count of recent outcomes

Revision ID: c8e1f0a2b3d4
Revises: b7d4e2f1a9c3
Create Date: 2026-12-02 06:30:00

"""
from alembic import op

revision = 'c8e1f0a2b3d4'
down_revision = 'b7d4e2f1a9c3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_webhook_deliveries_attempted_at", "webhook_deliveries", ["attempted_at"])


def downgrade():
    op.drop_index("ix_webhook_deliveries_attempted_at", table_name="webhook_deliveries")
