"""Publishing a job, and the worker task that classifies a batch of jobs and records the results."""
import logging
import math
import time

import numpy as np
from celery import shared_task
from flask import current_app
from PIL import UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from models.classification import Classification
from models.preprocessing import TooManyPixels, prepare
from tasks.batching import NoLossBatches
from tasks.metrics import count_recorded, observe_batch
from webapp.extensions import db
from webapp.imagestore import ImageNotFound
from webapp.predictions.models import PENDING, Prediction, done_outcome, failed_outcome, record_outcomes

logger = logging.getLogger(__name__)

# The web process commits the row before publishing, but a replica or a slow
# commit may still hide it for a moment: look again this many times, with backoff.
ROW_VISIBILITY_ATTEMPTS = 8
# A database outage is waited out for about two minutes (1+2+4+...+30 s) before the batch is requeued.
DATABASE_ATTEMPTS = 8


def enqueue_classification(prediction_uuid: str, image_url: str, attempt: int = 0, countdown: float = 0) -> bool:
    """Publish the job; False if the broker refused (the row stays pending for the sweeper)."""
    try:
        # Through this Flask app's own Celery app, not the process-wide default.
        celery = current_app.extensions["celery"]
        celery.send_task(classify_image.name, args=(prediction_uuid, image_url), kwargs={"attempt": attempt},
                         task_id=prediction_uuid, countdown=countdown or None)
        return True
    except Exception:  # any broker or connection error: the sweeper publishes it again
        logger.exception("publish failed for %s; it stays pending and will be republished", prediction_uuid,
                         extra={"uuid": prediction_uuid})
        return False


@shared_task(base=NoLossBatches, name="classify_image")
def classify_image(requests) -> bool:
    """Classify every pending job of the batch in one inference call; True once results are committed."""
    jobs = {request.args[0]: request.args[1] for request in requests}
    attempts = {request.args[0]: request.kwargs.get("attempt", 0) for request in requests}
    states = _with_database_retry(lambda: dict(db.session.execute(
        select(Prediction.uuid, Prediction.status).where(Prediction.uuid.in_(jobs))
    ).all()))
    db.session.rollback()  # end the read transaction before the slow part
    pending = {prediction_uuid for prediction_uuid, status in states.items() if status == PENDING}
    for prediction_uuid in jobs.keys() - states.keys():
        _look_again_later(prediction_uuid, jobs[prediction_uuid], attempts[prediction_uuid])

    inputs, outcomes = _prepare_inputs({u: jobs[u] for u in pending})
    if inputs:
        outcomes.update(_classify(inputs))
    written = _with_database_retry(lambda: record_outcomes(outcomes))
    count_recorded(outcomes[prediction_uuid]["status"] for prediction_uuid in written)
    for prediction_uuid, outcome in outcomes.items():
        # "recorded" only for rows this worker wrote: across workers, each uuid has exactly one such line.
        what = "recorded" if prediction_uuid in written else "already final, not recorded again"
        logger.info("prediction %s %s: %s", prediction_uuid, what, outcome["prediction"] or outcome["error"],
                    extra={"uuid": prediction_uuid})
    return True


def _prepare_inputs(jobs: dict[str, str]) -> tuple[dict, dict]:
    """Read and preprocess each image; a vanished, oversized or undecodable image fails only its own job.

    The web checks the pixel count too, but an image that reaches the worker otherwise
    (a lower limit here, a row written by hand) must fail, not exhaust the worker's memory.
    """
    store = current_app.extensions["image_store"]
    max_pixels = current_app.config["MAX_IMAGE_PIXELS"]
    inputs, failures = {}, {}
    for prediction_uuid, image_url in jobs.items():
        try:
            inputs[prediction_uuid] = prepare(store.read(image_url), max_pixels)
        except (ImageNotFound, TooManyPixels) as error:
            failures[prediction_uuid] = failed_outcome(str(error))
        except (UnidentifiedImageError, OSError, ValueError) as error:
            failures[prediction_uuid] = failed_outcome(f"the image could not be decoded: {error}")
    return inputs, failures


def _classify(inputs: dict[str, np.ndarray]) -> dict[str, dict]:
    """One inference call for the batch. If it raises, each image goes alone, so a poison
    image fails only its own job instead of sending the batch back to the queue forever."""
    from tasks.worker_model import get_classifier

    started = time.perf_counter()
    try:
        results = get_classifier().classify(np.stack(list(inputs.values())))
    except Exception as error:
        if len(inputs) == 1:
            logger.exception("the model failed on %s", *inputs, extra={"uuid": next(iter(inputs))})
            return {prediction_uuid: failed_outcome(f"the model failed on this image: {error}") for prediction_uuid in inputs}
        logger.exception("a batch of %d failed; classifying its images one by one", len(inputs))
        return {u: outcome for u, x in inputs.items() for u, outcome in _classify({u: x}).items()}
    observe_batch(len(inputs), time.perf_counter() - started)
    return {prediction_uuid: _outcome(result) for prediction_uuid, result in zip(inputs, results)}


def _outcome(result: Classification) -> dict:
    if not all(math.isfinite(entry["score"]) for entry in result.top5):
        return failed_outcome("the model produced no valid scores for this image")
    return done_outcome(result.label, result.confidence, result.top5)


def _with_database_retry(operation):
    """Wait out a database outage with backoff, so a batch neither spins through the queue nor is lost;
    if the outage outlasts the attempts, the error propagates and the batch is requeued, not acked."""
    for attempt in range(DATABASE_ATTEMPTS):
        try:
            return operation()
        except OperationalError:
            db.session.rollback()
            if attempt == DATABASE_ATTEMPTS - 1:
                raise
            delay = min(2**attempt, 30)
            logger.warning("database unavailable; retrying in %ss", delay, exc_info=True)
            time.sleep(delay)


def _look_again_later(prediction_uuid: str, image_url: str, attempt: int) -> None:
    if attempt + 1 >= ROW_VISIBILITY_ATTEMPTS:
        logger.error("prediction %s never appeared in the database; dropping it", prediction_uuid,
                     extra={"uuid": prediction_uuid})
        return
    enqueue_classification(prediction_uuid, image_url, attempt + 1, countdown=0.25 * 2**attempt)
