"""Re-publishing jobs that stayed pending too long, so none is lost to a failed publish.

Run by celery beat. Re-publishing is safe: the worker records only the first
result. Each republish is counted in the row's ``republished`` column, and a
job republished ``MAX_DELIVERIES`` times ends as failed, so no job cycles
between the sweeper and the queue forever.
"""

import logging
from datetime import timedelta
from typing import cast

from celery import shared_task
from sqlalchemy import CursorResult, select, update

from config.settings import current_settings
from jobs.batches import Batch
from jobs.broker import REPUBLISH_TASK
from jobs.database import db
from jobs.endings import announce_ended
from jobs.queue import publish_job
from jobs.records import FAILED, PENDING, Prediction, failed_outcome, record_outcomes, utcnow

logger = logging.getLogger(__name__)
SWEEP_LIMIT = 500


@shared_task(name=REPUBLISH_TASK)
def republish_stale_pending() -> int:
    """Fail or republish the stale pending jobs; returns how many this sweep changed."""
    failed, republished = settle(stale_pending())
    if failed or republished:
        logger.warning("republished %d stale pending predictions, failed %d", len(republished), len(failed))
    return len(failed) + len(republished)


def stale_pending():
    """(uuid, image_url, republished, batch_id, the batch's owner) of the jobs pending for longer than
    REPUBLISH_PENDING_AFTER, oldest first."""
    cutoff = utcnow() - timedelta(seconds=current_settings().REPUBLISH_PENDING_AFTER)
    stale = db.session.execute(
        select(Prediction.uuid, Prediction.image_url, Prediction.republished, Prediction.batch_id, Batch.owner)
        .outerjoin(Batch, Batch.id == Prediction.batch_id)
        .where(Prediction.status == PENDING, Prediction.updated_at < cutoff)
        .order_by(Prediction.updated_at)
        .limit(SWEEP_LIMIT)
    ).all()
    db.session.rollback()
    return stale


def settle(stale) -> tuple[set[str], set[str]]:
    """Fail the ``stale`` jobs republished MAX_DELIVERIES times, republish the others: (failed, republished).

    A worker may end any of them after ``stale_pending`` read it. Every write is conditional on the
    row still being pending, and only the rows this sweep's own writes changed are announced or
    republished, so a job a worker ended meanwhile gets no second completion event or webhook."""
    limit = current_settings().MAX_DELIVERIES
    exhausted = {row.uuid for row in stale if row.republished >= limit}
    failed = record_outcomes(
        {
            job: failed_outcome(f"gave up after republishing it {limit} times: no worker finished it")
            for job in exhausted
        }
    )
    announce_ended(dict.fromkeys(failed, FAILED))
    republished = set()
    for row in stale:
        prediction_uuid = row.uuid
        if prediction_uuid in exhausted:
            continue
        # Count and touch the row first, so the next sweep waits a full period before trying again.
        result = db.session.execute(
            update(Prediction)
            .where(Prediction.uuid == prediction_uuid, Prediction.status == PENDING)
            .values(updated_at=utcnow(), republished=row.republished + 1)
        )
        touched = cast(CursorResult, result).rowcount
        db.session.commit()
        if touched:
            # A batch's job goes back as bulk work of the same client as when it was submitted.
            client = row.owner or row.batch_id or ""
            publish_job(prediction_uuid, row.image_url, bulk=row.batch_id is not None, client=client)
            republished.add(prediction_uuid)
    return failed, republished
