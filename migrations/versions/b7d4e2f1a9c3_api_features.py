"""provenance columns, cancel and retention index, idempotency keys, workers

Revision ID: b7d4e2f1a9c3
Revises: 5d2b8e7f1a90
Create Date: 2026-11-25 12:45:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = 'b7d4e2f1a9c3'
down_revision = '5d2b8e7f1a90'
branch_labels = None
depends_on = None

Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MODEL_COLUMNS = (("model_name", 64), ("model_runtime", 16), ("weights_sha256", 64), ("converted_sha256", 64))


def upgrade():
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("finished_at", Timestamp, nullable=True))
        for name, length in MODEL_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length), nullable=True))
        batch.create_index("ix_predictions_created_at", ["created_at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(64), nullable=False),
        # Printable ASCII compared byte for byte (the default collation ignores case).
        sa.Column("key", sa.String(255).with_variant(mysql.VARCHAR(255, charset="ascii", collation="ascii_bin"),
                                                     "mysql", "mariadb"), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("prediction_uuid", sa.String(36), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("scope", "key"),
    )
    op.create_index("ix_idempotency_keys_prediction_uuid", "idempotency_keys", ["prediction_uuid"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_table(
        "workers",
        sa.Column("hostname", sa.String(255), nullable=False),
        *(sa.Column(name, sa.String(length), nullable=True) for name, length in MODEL_COLUMNS),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("last_seen", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("hostname"),
    )
    op.create_index("ix_workers_last_seen", "workers", ["last_seen"])


def downgrade():
    op.drop_table("workers")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_index("ix_predictions_created_at")
        for name, _ in MODEL_COLUMNS:
            batch.drop_column(name)
        batch.drop_column("finished_at")
