"""Idempotency keys: a retried POST with the same ``Idempotency-Key`` gets the job it already made.

A key is remembered with a hash of what it was sent with (the image's bytes and the
name) for ``IDEMPOTENCY_TTL_SECONDS``. The table's primary key (scope, key) is what
settles two requests racing with one key: the second insert fails, and that request
answers with the winner's job.
"""

import hashlib
from datetime import timedelta

from sqlalchemy import String, bindparam, delete, insert, select
from sqlalchemy.dialects import mysql

from jobs.database import db
from jobs.records import Timestamp, utcnow

MAX_KEY_LENGTH = 255
# Keys are printable ASCII, compared byte for byte: MariaDB's default collation would make "Key" and "key" one key.
KeyString = String(MAX_KEY_LENGTH).with_variant(
    mysql.VARCHAR(MAX_KEY_LENGTH, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)


class IdempotencyConflict(ValueError):
    """The key was used before with a different body."""


class IdempotencyKey(db.Model):
    __tablename__ = "idempotency_keys"

    # The API key's hash when API keys are on (each client has its own keys), else "".
    scope = db.Column(db.String(64), primary_key=True)
    key = db.Column(KeyString, primary_key=True)
    body_sha256 = db.Column(db.String(64), nullable=False)
    prediction_uuid = db.Column(db.String(36), nullable=False, index=True)
    created_at = db.Column(Timestamp, nullable=False, default=utcnow, index=True)


def body_hash(name: str, image: bytes) -> str:
    """sha256 over the name and the image, with a separator no name contains."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    digest.update(image)
    return digest.hexdigest()


def cutoff(ttl_seconds: int):
    return utcnow() - timedelta(seconds=ttl_seconds)


_TABLE = IdempotencyKey.__table__
# Built once, as in jobs/records.py: building a statement costs more CPU than running it.
_FIND = select(_TABLE).where(_TABLE.c.scope == bindparam("scope"), _TABLE.c.key == bindparam("key"))
_INSERT = insert(_TABLE)


def find_key(scope: str, key: str):
    """The key's row (live or expired), read on a connection of its own, or None."""
    with db.engine.connect() as connection:
        return connection.execute(_FIND, {"scope": scope, "key": key}).first()


def job_for(row, body_sha256: str, ttl_seconds: int) -> str | None:
    """The job a live key made with this body; None without a key or once it expired;
    IdempotencyConflict when it was used with another body."""
    if row is None or row.created_at < cutoff(ttl_seconds):
        return None
    if row.body_sha256 != body_sha256:
        raise IdempotencyConflict(row.key)
    return row.prediction_uuid


def record_key(connection, scope: str, key: str, body_sha256: str, prediction_uuid: str, expired_before=None) -> None:
    """Insert the key in the job's transaction. ``expired_before``: the key's expired row exists and
    is replaced. A missing key is never deleted first: on MariaDB that DELETE takes a gap lock, and
    two requests racing with one key would deadlock instead of one winning on the primary key."""
    table = IdempotencyKey.__table__
    if expired_before is not None:
        connection.execute(
            delete(table).where(table.c.scope == scope, table.c.key == key, table.c.created_at < expired_before)
        )
    connection.execute(
        _INSERT,
        {
            "scope": scope,
            "key": key,
            "body_sha256": body_sha256,
            "prediction_uuid": prediction_uuid,
            "created_at": utcnow(),
        },
    )
