"""The ``predictions`` table: one row per accepted image, kept after it is done, and its outcomes.

The web creates rows (``jobs.submit``) and reads them; the worker and the
sweeper end them with ``record_outcomes``.
"""
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, bindparam, insert, select, update
from sqlalchemy.dialects import mysql

from jobs.database import db

PENDING, DONE, FAILED = "pending", "done", "failed"
# Microseconds on MySQL too (its DATETIME keeps whole seconds by default), so latencies can be measured.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def utcnow():
    """Naive UTC, the same on MariaDB DATETIME and SQLite."""
    return datetime.now(UTC).replace(tzinfo=None)


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
    # Times the sweeper published the job again (tasks/sweeper.py bounds it).
    republished = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    # Where the final result is POSTed when the job ends (jobs/webhooks.py); vetted when accepted.
    callback_url = db.Column(db.String(2048))
    created_at = db.Column(Timestamp, nullable=False, default=utcnow)
    updated_at = db.Column(Timestamp, nullable=False, default=utcnow, onupdate=utcnow, index=True)

    def to_json(self) -> dict:
        return prediction_json(self)


def prediction_json(row) -> dict:
    """What the API shows of a row, from an ORM object or a Core row alike."""
    body = {"uuid": row.uuid, "status": row.status}
    if row.status == DONE:
        body.update(prediction=row.prediction, confidence=row.confidence, top5=row.top5)
    elif row.status == FAILED:
        body["error"] = row.error
    return body


def find_prediction(prediction_uuid: str):
    """The row, read with one Core query on a pooled connection (a GET's whole database cost), or None."""
    table = Prediction.__table__
    with db.engine.connect() as connection:
        return connection.execute(select(table).where(table.c.uuid == prediction_uuid)).first()


def insert_prediction(prediction_uuid: str, name: str, image_url: str, callback_url: str | None = None) -> None:
    """Record a new pending job: one Core INSERT in its own transaction, no ORM unit of work."""
    now = utcnow()
    with db.engine.begin() as connection:
        connection.execute(insert(Prediction.__table__).values(
            uuid=prediction_uuid, name=name, image_url=image_url, callback_url=callback_url, status=PENDING,
            republished=0, created_at=now, updated_at=now))


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
