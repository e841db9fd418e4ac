"""callback URL per prediction, and a record of every webhook delivery attempt

Revision ID: 5d2b8e7f1a90
Revises: 4a7e9c1b2d30
Create Date: 2026-11-25 12:40:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '5d2b8e7f1a90'
down_revision = '4a7e9c1b2d30'
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("callback_url", sa.String(2048), nullable=True))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), sa.ForeignKey("predictions.uuid", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", TIMESTAMP, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("duration", sa.Float(), nullable=False),
    )


def downgrade():
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("callback_url")
