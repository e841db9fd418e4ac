"""Re-publishing jobs that stayed pending too long, so none is lost to a failed publish.

Run by celery beat. Re-publishing is safe: the worker records only the first
result. Each republish is counted in the row's ``republished`` column, and a
job republished ``MAX_DELIVERIES`` times ends as failed, so no job cycles
between the sweeper and the queue forever.
"""

import logging
from datetime import timedelta

from celery import shared_task
from sqlalchemy import select, update

from config.settings import current_settings
from jobs.broker import REPUBLISH_TASK
from jobs.database import db
from jobs.endings import announce_ended
from jobs.queue import publish_job
from jobs.records import FAILED, PENDING, Prediction, failed_outcome, record_outcomes, utcnow

logger = logging.getLogger(__name__)
SWEEP_LIMIT = 500


@shared_task(name=REPUBLISH_TASK)
def republish_stale_pending() -> int:
    settings = current_settings()
    cutoff = utcnow() - timedelta(seconds=settings.REPUBLISH_PENDING_AFTER)
    stale = db.session.execute(
        select(Prediction.uuid, Prediction.image_url, Prediction.republished)
        .where(Prediction.status == PENDING, Prediction.updated_at < cutoff)
        .order_by(Prediction.updated_at)
        .limit(SWEEP_LIMIT)
    ).all()
    exhausted = {row.uuid for row in stale if row.republished >= settings.MAX_DELIVERIES}
    record_outcomes(
        {
            job: failed_outcome(f"gave up after republishing it {settings.MAX_DELIVERIES} times: no worker finished it")
            for job in exhausted
        }
    )
    announce_ended(dict.fromkeys(exhausted, FAILED))
    for prediction_uuid, image_url, republished in stale:
        if prediction_uuid in exhausted:
            continue
        # Count and touch the row first, so the next sweep waits a full period before trying again.
        db.session.execute(
            update(Prediction)
            .where(Prediction.uuid == prediction_uuid)
            .values(updated_at=utcnow(), republished=republished + 1)
        )
        db.session.commit()
        publish_job(prediction_uuid, image_url)
    if stale:
        logger.warning(
            "republished %d stale pending predictions, failed %d", len(stale) - len(exhausted), len(exhausted)
        )
    return len(stale)
