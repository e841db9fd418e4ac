"""The ``batches`` table: many images sent in one request, each of them also an ordinary job.

A batch's rows are inserted in one transaction (``create_batch``) and published together. Its
state is derived from its rows' statuses, never kept twice: ``in_progress`` while any is
pending, then ``completed``; ``cancelling`` and ``cancelled`` once a cancel was asked.
``completed_at`` is stored once, by whoever first sees the last row end (``claim_completions``):
the worker that ended it, a cancel, or a GET that finds it unclaimed; only that claim sends the
batch's webhook and its completion event.
"""

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, update

from jobs.database import db
from jobs.records import CANCELLED, DONE, FAILED, PENDING, Prediction, Timestamp, utcnow

IN_PROGRESS, CANCELLING, COMPLETED = "in_progress", "cancelling", "completed"
STATUSES = (PENDING, DONE, FAILED, CANCELLED)
RESULT_PAGE = 500  # rows per query while streaming results: memory stays flat whatever the batch's size


class Batch(db.Model):
    __tablename__ = "batches"

    id = db.Column(db.String(36), primary_key=True)
    # Whose batch it is: the API key's id (webapp.auth.api_key_scope), "" with keys off.
    owner = db.Column(db.String(64), nullable=False, default="", server_default="")
    total = db.Column(db.Integer, nullable=False)
    # The upload, stored once; each image's URL is a part of it (jobs.imagestore.part_url).
    upload_url = db.Column(db.String(1024))
    callback_url = db.Column(db.String(2048))
    created_at = db.Column(Timestamp, nullable=False, default=utcnow, index=True)
    cancelled_at = db.Column(Timestamp)
    completed_at = db.Column(Timestamp)
    # The completion webhook's attempts (tasks.webhook_delivery.deliver_batch_webhook).
    webhook_attempts = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    webhook_status_code = db.Column(db.Integer)
    webhook_error = db.Column(db.String(500))
    webhook_first_attempt_at = db.Column(Timestamp)


@dataclass(frozen=True)
class BatchImage:
    """One image of a new batch: its URL, and the reason it was refused (then it is failed at once)."""

    name: str
    image_url: str
    error: str | None = None


_BATCHES = Batch.__table__
_PREDICTIONS = Prediction.__table__
_INSERT_ROWS = insert(_PREDICTIONS)
_COUNTS = (
    select(_PREDICTIONS.c.status, func.count(), func.max(_PREDICTIONS.c.updated_at))
    .where(_PREDICTIONS.c.batch_id == bindparam("batch_id"))
    .group_by(_PREDICTIONS.c.status)
)
_FIND = select(_BATCHES).where(_BATCHES.c.id == bindparam("batch_id"))
_RESULT_COLUMNS = (
    _PREDICTIONS.c.batch_index,
    _PREDICTIONS.c.uuid,
    _PREDICTIONS.c.name,
    _PREDICTIONS.c.status,
    _PREDICTIONS.c.prediction,
    _PREDICTIONS.c.confidence,
    _PREDICTIONS.c.top5,
    _PREDICTIONS.c.error,
)


@functools.cache
def _results_page(size: int):
    return (
        select(*_RESULT_COLUMNS)
        .where(
            _PREDICTIONS.c.batch_id == bindparam("batch_id"),
            _PREDICTIONS.c.batch_index > bindparam("after"),
            _PREDICTIONS.c.status != PENDING,
        )
        .order_by(_PREDICTIONS.c.batch_index)
        .limit(size)
    )


def create_batch(
    connection, batch_id: str, images: list[BatchImage], owner: str, upload_url: str | None, callback_url: str | None
) -> list[tuple[str, str]]:
    """Insert the batch and one row per image (an executemany) on ``connection``'s transaction.

    Returns the (uuid, image URL) of each pending row, to publish once committed."""
    now = utcnow()
    connection.execute(
        insert(_BATCHES),
        {
            "id": batch_id,
            "owner": owner,
            "total": len(images),
            "upload_url": upload_url,
            "callback_url": callback_url,
            "created_at": now,
            "webhook_attempts": 0,
        },
    )
    rows, pending = [], []
    for index, image in enumerate(images):
        prediction_uuid = str(uuid.uuid4())
        failed = image.error is not None
        rows.append(
            {
                "uuid": prediction_uuid,
                "name": image.name,
                "image_url": image.image_url,
                "status": FAILED if failed else PENDING,
                "error": image.error[:1000] if image.error is not None else None,
                "republished": 0,
                "created_at": now,
                "updated_at": now,
                "finished_at": now if failed else None,
                "batch_id": batch_id,
                "batch_index": index,
            }
        )
        if not failed:
            pending.append((prediction_uuid, image.image_url))
    if rows:
        connection.execute(_INSERT_ROWS, rows)
    return pending


def find_batch(connection, batch_id: str, owner: str | None):
    """The batch's row if it exists and belongs to ``owner`` (another key's batch is not found);
    ``owner`` None finds any (the service's own reads)."""
    row = connection.execute(_FIND, {"batch_id": batch_id}).first()
    return row if row is not None and owner in (None, row.owner) else None


def request_counts(connection, batch_id: str) -> tuple[dict[str, int], datetime | None]:
    """The batch's counts by status, and when its last row changed (its end, once none is pending)."""
    counts, last = dict.fromkeys(STATUSES, 0), None
    for status, count, updated in connection.execute(_COUNTS, {"batch_id": batch_id}):
        counts[status] = count
        last = updated if last is None or updated > last else last
    return {"total": sum(counts.values()), **counts}, last


def batch_status(cancelled: bool, pending: int) -> str:
    if pending:
        return CANCELLING if cancelled else IN_PROGRESS
    return CANCELLED if cancelled else COMPLETED


def batch_json(row, counts: dict[str, int], last_change) -> dict:
    """What the API shows of a batch. ``completed_at`` is when its last image ended: the claimed
    moment once claimed, until then its last row's change (so no reader waits on the claim)."""

    def stamp(moment):
        return None if moment is None else moment.isoformat(timespec="microseconds") + "Z"

    return {
        "id": row.id,
        "status": batch_status(row.cancelled_at is not None, counts[PENDING]),
        "request_counts": counts,
        "created_at": stamp(row.created_at),
        "completed_at": None if counts[PENDING] else stamp(row.completed_at or last_change),
    }


def read_batch(connection, batch_id: str, owner: str | None, claim: bool = False) -> tuple[dict | None, list[str]]:
    """(the batch's JSON or None if not found, the batches this read claimed). With ``claim``, a
    batch whose rows have all ended but whose end nobody claimed (its last worker died in between)
    is claimed here; the caller then announces it (``jobs.endings.announce_batches_completed``)."""
    row = find_batch(connection, batch_id, owner)
    if row is None:
        return None, []
    counts, last_change = request_counts(connection, batch_id)
    won = []
    if claim and not counts[PENDING] and row.completed_at is None:
        won = claim_completions(connection, [batch_id])
        row = find_batch(connection, batch_id, owner)
    return batch_json(row, counts, last_change), won


def batches_of(connection, uuids) -> set[str]:
    """The batches these jobs belong to."""
    uuids = list(uuids)
    if not uuids:
        return set()
    query = select(_PREDICTIONS.c.batch_id).where(_PREDICTIONS.c.uuid.in_(uuids), _PREDICTIONS.c.batch_id.is_not(None))
    return set(connection.execute(query.distinct()).scalars())


def claim_completions(connection, batch_ids) -> list[str]:
    """Set ``completed_at`` on each of these batches that has no pending row left and none yet.

    One conditional UPDATE per batch, so of all who notice a batch's end (workers, a cancel, a
    GET) exactly one wins it, and only the winner announces it. Returns the batches won."""
    won = []
    for batch_id in batch_ids:
        still_pending = (
            select(_PREDICTIONS.c.uuid)
            .where(_PREDICTIONS.c.batch_id == batch_id, _PREDICTIONS.c.status == PENDING)
            .limit(1)
        )
        if connection.execute(still_pending).first() is not None:
            continue
        claimed = connection.execute(
            update(_BATCHES)
            .where(_BATCHES.c.id == batch_id, _BATCHES.c.completed_at.is_(None))
            .values(completed_at=utcnow())
        )
        if claimed.rowcount == 1:
            won.append(batch_id)
    return won


def cancel_batch(connection, batch_id: str) -> int:
    """Cancel every image of the batch still pending (one UPDATE) and mark the batch cancelled;
    idempotent. A row a worker is classifying stays cancelled: results are written only over
    pending rows (``jobs.records.record_outcomes``). Returns how many rows this call cancelled."""
    now = utcnow()
    connection.execute(
        update(_BATCHES).where(_BATCHES.c.id == batch_id, _BATCHES.c.cancelled_at.is_(None)).values(cancelled_at=now)
    )
    return connection.execute(
        update(_PREDICTIONS)
        .where(_PREDICTIONS.c.batch_id == batch_id, _PREDICTIONS.c.status == PENDING)
        .values(status=CANCELLED, updated_at=now)
    ).rowcount


def result_pages(engine, batch_id: str):
    """The batch's ended rows in submission order, a page at a time (keyset pagination on
    (batch_id, batch_index), each page its own short query), so 10,000 images cost a page of memory."""
    after, page = -1, RESULT_PAGE
    while True:
        with engine.connect() as connection:
            rows = connection.execute(_results_page(page), {"batch_id": batch_id, "after": after}).all()
        if not rows:
            return
        yield rows
        if len(rows) < page:
            return
        after = rows[-1].batch_index


def result_record(row) -> dict:
    """One line of the results file: every field on every line (null where it does not apply)."""
    done = row.status == DONE
    return {
        "uuid": row.uuid,
        "name": row.name,
        "status": row.status,
        "prediction": row.prediction if done else None,
        "confidence": row.confidence if done else None,
        "top5": row.top5 if done else None,
        "error": row.error if row.status == FAILED else None,
    }
