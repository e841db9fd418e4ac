"""Idempotency keys: a retried POST with the same ``Idempotency-Key`` gets the job it already made.

A key is remembered with a hash of what it was sent with (the image's bytes and the
name) for ``IDEMPOTENCY_TTL_SECONDS``. The table's primary key (scope, key) is what
settles two requests racing with one key: the second insert fails, and that request
answers with the winner's job.
"""
import hashlib
from datetime import timedelta

from sqlalchemy import String, select
from sqlalchemy.dialects import mysql

from jobs.database import db
from jobs.records import Timestamp, utcnow

MAX_KEY_LENGTH = 255
# Keys are printable ASCII, compared byte for byte: MariaDB's default collation would make "Key" and "key" one key.
KeyString = String(MAX_KEY_LENGTH).with_variant(mysql.VARCHAR(MAX_KEY_LENGTH, charset="ascii", collation="ascii_bin"),
                                                "mysql", "mariadb")


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


def remembered_job(scope: str, key: str, body_sha256: str, ttl_seconds: int) -> str | None:
    """The uuid this key already made with this body; None if the key is new; IdempotencyConflict
    if it was used with another body. An expired key is deleted in the caller's transaction (the
    insert that follows becomes an update), and only then: a DELETE of a missing key would take a
    gap lock on MariaDB, and two requests racing with one key would deadlock instead of one winning."""
    row = db.session.execute(select(IdempotencyKey).where(
        IdempotencyKey.scope == scope, IdempotencyKey.key == key)).scalar_one_or_none()
    if row is None:
        return None
    if row.created_at < cutoff(ttl_seconds):
        db.session.delete(row)
        return None
    if row.body_sha256 != body_sha256:
        raise IdempotencyConflict(key)
    return row.prediction_uuid
