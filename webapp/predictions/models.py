"""The ``predictions`` table: one row per accepted image, kept after it is done."""
from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, update
from sqlalchemy.dialects import mysql

from webapp.extensions import db

PENDING, DONE, FAILED = "pending", "done", "failed"
# Microseconds on MySQL too (its DATETIME keeps whole seconds by default), so latencies can be measured.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def utcnow():
    """Naive UTC, the same on MariaDB DATETIME and SQLite."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Prediction(db.Model):
    __tablename__ = "predictions"

    uuid = db.Column(db.String(36), primary_key=True)
    name = db.Column(db.String(255), nullable=False)
    image_url = db.Column(db.String(1024), nullable=False)
    status = db.Column(db.String(16), nullable=False, default=PENDING, index=True)
    prediction = db.Column(db.String(50))
    confidence = db.Column(db.Double)
    top5 = db.Column(JSON)
    error = db.Column(db.String(1000))
    created_at = db.Column(Timestamp, nullable=False, default=utcnow)
    updated_at = db.Column(Timestamp, nullable=False, default=utcnow, onupdate=utcnow, index=True)

    def to_json(self) -> dict:
        body = {"uuid": self.uuid, "status": self.status}
        if self.status == DONE:
            body.update(prediction=self.prediction, confidence=self.confidence, top5=self.top5)
        elif self.status == FAILED:
            body["error"] = self.error
        return body


def finish(uuid: str, **fields) -> bool:
    """Record a final outcome once: only a pending row changes, so redelivery is harmless.

    Returns False when the row was already final (or does not exist).
    """
    result = db.session.execute(
        update(Prediction)
        .where(Prediction.uuid == uuid, Prediction.status == PENDING)
        .values(updated_at=utcnow(), **fields)
    )
    db.session.commit()
    return result.rowcount == 1


def fail(uuid: str, reason: str) -> bool:
    """Mark a job failed with a reason the client will read."""
    return finish(uuid, status=FAILED, error=reason[:1000])
