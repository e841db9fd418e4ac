"""microsecond timestamps on MySQL/MariaDB

Revision ID: 3c1d2e4f5a6b
Revises: 775d89aadbb9
Create Date: 2026-11-25 05:05:00

"""
from alembic import op
from sqlalchemy.dialects import mysql

revision = '3c1d2e4f5a6b'
down_revision = '775d89aadbb9'
branch_labels = None
depends_on = None


def upgrade():
    # SQLite stores timestamps as text with microseconds already.
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        for column in ("created_at", "updated_at"):
            op.alter_column("predictions", column, type_=mysql.DATETIME(fsp=6), existing_nullable=False)


def downgrade():
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        for column in ("created_at", "updated_at"):
            op.alter_column("predictions", column, type_=mysql.DATETIME(), existing_nullable=False)
