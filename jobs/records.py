"""The ``predictions`` table: one row per accepted image, kept after it is done, and its outcomes.

The web creates rows (``jobs.submit``) and reads them; the worker and the
sweeper end them with ``record_outcomes``.
"""

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, bindparam, insert, select, update
from sqlalchemy.dialects import mysql

from jobs.database import db
from jobs.tracing import current_trace_id

PENDING, DONE, FAILED, CANCELLED = "pending", "done", "failed", "cancelled"
# What a done row says about the model that produced it (filled by the worker, see models.runtime.provenance).
MODEL_FIELDS = ("model_name", "model_runtime", "weights_sha256", "converted_sha256")
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
    # Where the final result is POSTed when the job ends (jobs/webhook_schedule.py); vetted when accepted.
    callback_url = db.Column(db.String(2048))
    created_at = db.Column(Timestamp, nullable=False, default=utcnow, index=True)
    updated_at = db.Column(Timestamp, nullable=False, default=utcnow, onupdate=utcnow, index=True)
    # Provenance: when the job ended and, for a done job, which model produced the answer.
    finished_at = db.Column(Timestamp)
    model_name = db.Column(db.String(64))
    model_runtime = db.Column(db.String(16))
    weights_sha256 = db.Column(db.String(64))
    converted_sha256 = db.Column(db.String(64))
    # The batch (jobs/batches.py) this image came in, and its place there (results keep that order).
    batch_id = db.Column(db.String(36))
    batch_index = db.Column(db.Integer)
    # The OpenTelemetry trace the job was created in (jobs/tracing.py), when tracing is on.
    trace_id = db.Column(db.String(32))

    __table_args__ = (db.Index("ix_predictions_batch_id_index", "batch_id", "batch_index"),)

    def to_json(self) -> dict:
        return prediction_json(self)


def prediction_json(row) -> dict:
    """What the API shows of a row, from an ORM object or a Core row alike."""
    body = {"uuid": row.uuid, "status": row.status}
    if row.status == DONE:
        body.update(prediction=row.prediction, confidence=row.confidence, top5=row.top5)
        if row.model_name is not None:  # rows done before provenance was recorded have none
            body["model"] = {
                "name": row.model_name,
                "runtime": row.model_runtime,
                "weights_sha256": row.weights_sha256,
                "converted_sha256": row.converted_sha256,
            }
    elif row.status == FAILED:
        body["error"] = row.error
    if row.trace_id is not None:
        body["trace_id"] = row.trace_id
    if row.finished_at is not None:
        body["finished_at"] = row.finished_at.isoformat(timespec="microseconds") + "Z"
    return body


# Built once: a statement built per request costs more CPU than the round trip it makes.
_FIND = select(Prediction.__table__).where(Prediction.__table__.c.uuid == bindparam("uuid"))
_INSERT = insert(Prediction.__table__)
_RECORD = (
    update(Prediction.__table__)
    .where(Prediction.__table__.c.uuid == bindparam("b_uuid"), Prediction.__table__.c.status == PENDING)
    .values(
        {
            column: bindparam(f"b_{column}")
            for column in ("status", "prediction", "confidence", "top5", "error", "updated_at", "finished_at")
            + MODEL_FIELDS
        }
    )
)


def find_prediction(prediction_uuid: str):
    """The row, read with one Core query on a pooled connection (a GET's whole database cost), or None."""
    with db.engine.connect() as connection:
        return connection.execute(_FIND, {"uuid": prediction_uuid}).first()


def insert_prediction(
    prediction_uuid: str, name: str, image_url: str, callback_url: str | None = None, connection=None
) -> None:
    """Record a new pending job: one Core INSERT in its own transaction (or ``connection``'s), no ORM unit of work."""
    if connection is None:
        with db.engine.begin() as connection:
            insert_prediction(prediction_uuid, name, image_url, callback_url, connection)
        return
    now = utcnow()
    connection.execute(
        _INSERT,
        {
            "uuid": prediction_uuid,
            "name": name,
            "image_url": image_url,
            "callback_url": callback_url,
            "trace_id": current_trace_id(),
            "status": PENDING,
            "republished": 0,
            "created_at": now,
            "updated_at": now,
        },
    )


def done_outcome(label: str, confidence: float, top5: list[dict]) -> dict:
    return {"status": DONE, "prediction": label, "confidence": confidence, "top5": top5, "error": None}


def failed_outcome(reason: str) -> dict:
    """A failure with the reason the client will read."""
    return {"status": FAILED, "prediction": None, "confidence": None, "top5": None, "error": reason[:1000]}


def record_outcomes(outcomes: dict[str, dict], model: dict | None = None) -> set[str]:
    """Write final outcomes in one transaction, only over rows still pending: a redelivered
    or re-published job is written once, a late duplicate changes nothing, and a cancelled
    job stays cancelled. Done outcomes record ``model`` (``MODEL_FIELDS``) as their provenance.

    Returns the uuids whose rows this call wrote, so a worker can report exactly the jobs it
    finished and not those another worker had finished first: the rows that carry this call's
    ``finished_at`` (microseconds), read back in the same transaction. One executemany and one
    SELECT per batch, instead of a statement (and its round trip) per row."""
    if not outcomes:
        return set()
    now = utcnow()
    rows = []
    for job, outcome in outcomes.items():
        provenance = model if model is not None and outcome["status"] == DONE else {}
        rows.append(
            {
                "b_uuid": job,
                "b_updated_at": now,
                "b_finished_at": now,
                **{f"b_{field}": provenance.get(field) for field in MODEL_FIELDS},
                **{f"b_{key}": value for key, value in outcome.items()},
            }
        )
    db.session.execute(_RECORD, rows)
    table = Prediction.__table__
    mine = select(table.c.uuid).where(table.c.uuid.in_(outcomes), table.c.finished_at == now)
    written = set(db.session.execute(mine).scalars())
    db.session.commit()
    return written


def cancel_job(prediction_uuid: str):
    """Cancel the job if it is still pending, with one conditional UPDATE, so a worker's result and a
    cancel cannot both win. Returns (the row as it now is or None, whether this call cancelled it)."""
    table = Prediction.__table__
    with db.engine.begin() as connection:
        cancelled = (
            connection.execute(
                update(table)
                .where(table.c.uuid == prediction_uuid, table.c.status == PENDING)
                .values(status=CANCELLED, updated_at=utcnow())
            ).rowcount
            == 1
        )
        row = connection.execute(select(table).where(table.c.uuid == prediction_uuid)).first()
    return row, cancelled
