"""Which workers run which model: each worker upserts its row at start and every
``HEARTBEAT_SECONDS``, and removes it when it stops, so ``/health`` can list the
live ones from any host through the database they all share.
"""

from datetime import timedelta
from typing import cast

from sqlalchemy import CursorResult, select, update

from jobs.database import db
from jobs.records import MODEL_FIELDS, Timestamp, utcnow

HEARTBEAT_SECONDS = 30
# A worker not heard from for three heartbeats is taken as gone (killed, host lost).
LIVE_WITHIN = timedelta(seconds=3 * HEARTBEAT_SECONDS)


class WorkerRecord(db.Model):
    __tablename__ = "workers"

    hostname = db.Column(db.String(255), primary_key=True)
    model_name = db.Column(db.String(64))
    model_runtime = db.Column(db.String(16))
    weights_sha256 = db.Column(db.String(64))
    converted_sha256 = db.Column(db.String(64))
    started_at = db.Column(Timestamp, nullable=False, default=utcnow)
    last_seen = db.Column(Timestamp, nullable=False, default=utcnow, index=True)


def heartbeat(hostname: str, model: dict) -> None:
    """Record that ``hostname`` runs ``model`` now (insert the first time)."""
    now = utcnow()
    values = {field: model.get(field) for field in MODEL_FIELDS}
    result = db.session.execute(
        update(WorkerRecord).where(WorkerRecord.hostname == hostname).values(last_seen=now, **values)
    )
    updated = cast(CursorResult, result).rowcount
    if not updated:
        db.session.add(WorkerRecord(hostname=hostname, started_at=now, last_seen=now, **values))
    db.session.commit()


def forget(hostname: str) -> None:
    db.session.execute(WorkerRecord.__table__.delete().where(WorkerRecord.hostname == hostname))
    db.session.commit()


def live_workers() -> list[dict]:
    rows = db.session.execute(
        select(WorkerRecord).where(WorkerRecord.last_seen >= utcnow() - LIVE_WITHIN).order_by(WorkerRecord.hostname)
    ).scalars()
    return [
        {
            "hostname": row.hostname,
            "model": {
                "name": row.model_name,
                "runtime": row.model_runtime,
                "weights_sha256": row.weights_sha256,
                "converted_sha256": row.converted_sha256,
            },
            "started_at": row.started_at.isoformat(timespec="seconds") + "Z",
            "last_seen": row.last_seen.isoformat(timespec="seconds") + "Z",
        }
        for row in rows
    ]
