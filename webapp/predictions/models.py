"""The ``predictions`` table: one row per accepted image, kept after it is done."""
from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, bindparam, update
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


def done_outcome(label: str, confidence: float, top5: list[dict]) -> dict:
    return {"status": DONE, "prediction": label, "confidence": confidence, "top5": top5, "error": None}


def failed_outcome(reason: str) -> dict:
    """A failure with the reason the client will read."""
    return {"status": FAILED, "prediction": None, "confidence": None, "top5": None, "error": reason[:1000]}


def record_outcomes(outcomes: dict[str, dict]) -> set[str]:
    """Write final outcomes in one transaction, only over rows still pending: a redelivered
    or re-published job is written once, and a late duplicate changes nothing.

    Returns the uuids whose rows this call wrote (each UPDATE's rowcount), so a worker can
    report exactly the jobs it finished and not those another worker had finished first."""
    if not outcomes:
        return set()
    table = Prediction.__table__
    columns = ("status", "prediction", "confidence", "top5", "error", "updated_at")
    statement = (
        update(table)
        .where(table.c.uuid == bindparam("b_uuid"), table.c.status == PENDING)
        .values({column: bindparam(f"b_{column}") for column in columns})
    )
    now = utcnow()
    # One statement per row, as the MySQL driver runs an executemany UPDATE anyway, but each with its own rowcount.
    written = {job for job, outcome in outcomes.items()
               if db.session.execute(statement, {"b_uuid": job, "b_updated_at": now,
                                                 **{f"b_{key}": value for key, value in outcome.items()}}).rowcount}
    db.session.commit()
    return written
