"""count how often the sweeper republished a job

Revision ID: 4a7e9c1b2d30
Revises: 3c1d2e4f5a6b
Create Date: 2026-11-25 12:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = '4a7e9c1b2d30'
down_revision = '3c1d2e4f5a6b'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("republished", sa.Integer(), nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("republished")
