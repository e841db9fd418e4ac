"""Re-publishing jobs that stayed pending too long, so none is lost to a failed publish.

Run by celery beat. Re-publishing is safe: the worker records only the first result.
"""
import logging
from datetime import timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy import select, update

from tasks.classify import enqueue_classification
from webapp.extensions import db
from webapp.predictions.models import PENDING, Prediction, utcnow

logger = logging.getLogger(__name__)
SWEEP_LIMIT = 500


@shared_task(name="republish_stale_pending")
def republish_stale_pending() -> int:
    cutoff = utcnow() - timedelta(seconds=current_app.config["REPUBLISH_PENDING_AFTER"])
    stale = db.session.execute(
        select(Prediction.uuid, Prediction.image_url)
        .where(Prediction.status == PENDING, Prediction.updated_at < cutoff)
        .order_by(Prediction.updated_at)
        .limit(SWEEP_LIMIT)
    ).all()
    for prediction_uuid, image_url in stale:
        # Touch the row first so the next sweep waits a full period before trying again.
        db.session.execute(
            update(Prediction).where(Prediction.uuid == prediction_uuid).values(updated_at=utcnow())
        )
        db.session.commit()
        enqueue_classification(prediction_uuid, image_url)
    if stale:
        logger.warning("republished %d stale pending predictions", len(stale))
    return len(stale)
