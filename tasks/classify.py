"""Publishing a job, and the worker task that classifies it and records the result."""
import logging
import time

from celery import shared_task
from flask import current_app
from PIL import UnidentifiedImageError
from sqlalchemy.exc import OperationalError

from models.preprocessing import prepare
from tasks.metrics import observe_batch
from webapp.extensions import db
from webapp.imagestore import ImageNotFound, ImageStoreUnavailable
from webapp.predictions.models import DONE, PENDING, Prediction, fail, finish

logger = logging.getLogger(__name__)

# The web process commits the row before publishing, but a replica or a slow
# commit may still hide it for a moment: wait this many times, with backoff.
ROW_VISIBILITY_RETRIES = 8


def enqueue_classification(prediction_uuid: str, image_url: str) -> bool:
    """Publish the job; False if the broker refused (the row stays pending for the sweeper)."""
    try:
        # Through this Flask app's own Celery app, not the process-wide default.
        celery = current_app.extensions["celery"]
        celery.send_task(classify_image.name, args=(prediction_uuid, image_url), task_id=prediction_uuid)
        return True
    except Exception:  # any broker or connection error: the sweeper publishes it again
        logger.exception("publish failed for %s; it stays pending and will be republished", prediction_uuid)
        return False


@shared_task(
    bind=True,
    name="classify_image",
    autoretry_for=(OperationalError, ImageStoreUnavailable),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=ROW_VISIBILITY_RETRIES,
)
def classify_image(self, prediction_uuid: str, image_url: str) -> None:
    row = db.session.get(Prediction, prediction_uuid)
    if row is None:
        if self.request.retries >= ROW_VISIBILITY_RETRIES:
            logger.error("prediction %s never appeared in the database; dropping it", prediction_uuid)
            return
        raise self.retry(countdown=0.25 * 2**self.request.retries)
    if row.status != PENDING:
        logger.info("prediction %s is already %s; redelivery ignored", prediction_uuid, row.status)
        return
    db.session.rollback()  # end the read transaction before the slow part

    try:
        image = prepare(current_app.extensions["image_store"].read(image_url))
    except ImageNotFound as error:
        fail(prediction_uuid, str(error))
        return
    except (UnidentifiedImageError, OSError, ValueError) as error:
        fail(prediction_uuid, f"the image could not be decoded: {error}")
        return

    from tasks.worker_model import get_classifier

    started = time.perf_counter()
    result = get_classifier().classify(image[None])[0]
    observe_batch(1, time.perf_counter() - started)
    finish(prediction_uuid, status=DONE, prediction=result.label, confidence=result.confidence, top5=result.top5)
    logger.info("prediction %s: %s (%.3f)", prediction_uuid, result.label, result.confidence)
