"""The worker task: classify a batch of jobs in one model call and record the outcomes.

Each message asks for one image; celery-batches hands the worker several at
once (``tasks.batching``). Whatever one image does while it is read, decoded
or prepared fails only its own job, with a reason a person can read. Only
causes outside the images (database, store) send the batch back, after backoff.
"""

import logging
import math
import time

import numpy as np
from celery import shared_task
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from config.settings import current_settings
from jobs.broker import CLASSIFY_TASK
from jobs.database import db
from jobs.endings import announce_ended
from jobs.imagecheck import ImageRefused, configured_limits, inspect_image
from jobs.imagestore import ImageNotFound
from jobs.records import PENDING, Prediction, done_outcome, failed_outcome, record_outcomes
from models.classification import Classification
from models.preprocessing import UndecodableImage, prepare
from tasks.batching import NoLossBatches, deliveries
from tasks.state import worker_state
from tasks.worker_model import load_classifier

logger = logging.getLogger(__name__)

# The web commits the row before publishing, but a replica may still hide it for a moment:
# a job whose row is missing is looked up again after these pauses (seconds), then dropped.
ROW_VISIBILITY_PAUSES = (0.25, 0.5, 1, 2)
# A database outage is waited out (1+2+4+8+16 s) before the batch goes back to the queue.
DATABASE_PAUSES = (1, 2, 4, 8, 16)


@shared_task(base=NoLossBatches, name=CLASSIFY_TASK)
def classify_batch(requests) -> bool:
    """Classify every pending job of the batch; True once the outcomes are committed."""
    jobs = {request.args[0]: request.args[1] for request in requests}
    pending = _pending_jobs(jobs)
    max_deliveries = current_settings().MAX_DELIVERIES
    outcomes = {
        request.args[0]: failed_outcome(
            f"gave up after {max_deliveries} deliveries: processing this image stopped its worker "
            "process (crash or time limit) every time"
        )
        for request in requests
        if request.args[0] in pending and deliveries(request) >= max_deliveries
    }
    inputs = _prepare_inputs({job: jobs[job] for job in pending if job not in outcomes}, outcomes)
    if inputs:
        outcomes.update(_classify(inputs))
    written = _with_database_retry(lambda: record_outcomes(outcomes, worker_state.model_provenance))
    if worker_state.metrics is not None:
        worker_state.metrics.count_recorded(outcomes[prediction_uuid]["status"] for prediction_uuid in written)
    # Only the rows this call wrote: whoever wrote the others announced them (events, webhooks) already.
    announce_ended({prediction_uuid: outcomes[prediction_uuid]["status"] for prediction_uuid in written})
    for prediction_uuid, outcome in outcomes.items():
        # "recorded" only for rows this worker wrote: across workers, each uuid has exactly one such line.
        what = "recorded" if prediction_uuid in written else "already final, not recorded again"
        logger.info(
            "prediction %s %s: %s",
            prediction_uuid,
            what,
            outcome["prediction"] or outcome["error"],
            extra={"uuid": prediction_uuid},
        )
    return True


def _pending_jobs(jobs: dict[str, str]) -> set[str]:
    """The jobs whose rows are still pending; a job already ended (a redelivery) is skipped."""

    def read_statuses(uuids):
        query = select(Prediction.uuid, Prediction.status).where(Prediction.uuid.in_(uuids))
        return _with_database_retry(lambda: dict(db.session.execute(query).all()))

    states = read_statuses(jobs)
    for pause in ROW_VISIBILITY_PAUSES:
        missing = jobs.keys() - states.keys()
        if not missing:
            break
        time.sleep(pause)
        states.update(read_statuses(missing))
    db.session.rollback()  # end the read transaction before the slow part
    for prediction_uuid in jobs.keys() - states.keys():
        logger.error("prediction %s has no row; dropping its message", prediction_uuid, extra={"uuid": prediction_uuid})
    for prediction_uuid, status in states.items():
        if status != PENDING:
            logger.info(
                "prediction %s already %s; redelivery ignored", prediction_uuid, status, extra={"uuid": prediction_uuid}
            )
    return {prediction_uuid for prediction_uuid, status in states.items() if status == PENDING}


def _prepare_inputs(jobs: dict[str, str], failures: dict[str, dict]) -> dict[str, np.ndarray]:
    """Read, check and preprocess each image; any error fails only its own job (added to ``failures``).

    The web checked the image's structure already; it is checked again here because a file may
    reach the worker otherwise (limits lowered since, a row written by hand), and the check costs
    microseconds while the decode it guards could cost gigabytes.
    """
    store = current_app.extensions["image_store"]
    limits = configured_limits(current_settings())
    inputs = {}
    for prediction_uuid, image_url in jobs.items():
        try:
            data = store.read(image_url)
            inspect_image(data, limits)
            inputs[prediction_uuid] = prepare(data)
        except ImageNotFound as error:
            failures[prediction_uuid] = failed_outcome(str(error))
        except ImageRefused as error:
            failures[prediction_uuid] = failed_outcome(error.message)
        except UndecodableImage as error:  # expected of damaged files: one line, no traceback
            logger.warning("image of %s not decodable: %s", prediction_uuid, error, extra={"uuid": prediction_uuid})
            failures[prediction_uuid] = failed_outcome(f"the image could not be decoded: {error}")
        except Exception as error:  # a bug, not a bad file: the traceback is wanted
            logger.exception("preparing the image of %s failed", prediction_uuid, extra={"uuid": prediction_uuid})
            failures[prediction_uuid] = failed_outcome(
                f"the image could not be decoded: {type(error).__name__}: {error}"
            )
    return inputs


def _classify(inputs: dict[str, np.ndarray]) -> dict[str, dict]:
    """One inference call for the batch. If it raises, each image goes alone, so a poison
    image fails only its own job instead of sending the batch back to the queue."""
    started = time.perf_counter()
    try:
        results = load_classifier(worker_state, current_settings()).classify(np.stack(list(inputs.values())))
    except Exception as error:
        if len(inputs) == 1:
            logger.exception("the model failed on %s", *inputs, extra={"uuid": next(iter(inputs))})
            return {job: failed_outcome(f"the model failed on this image: {error}") for job in inputs}
        logger.exception("a batch of %d failed; classifying its images one by one", len(inputs))
        return {u: outcome for u, x in inputs.items() for u, outcome in _classify({u: x}).items()}
    if worker_state.metrics is not None:
        worker_state.metrics.observe_batch(len(inputs), time.perf_counter() - started)
    return {prediction_uuid: _outcome(result) for prediction_uuid, result in zip(inputs, results)}


def _outcome(result: Classification) -> dict:
    if not all(math.isfinite(entry["score"]) for entry in result.top5):
        return failed_outcome("the model produced no valid scores for this image")
    return done_outcome(result.label, result.confidence, result.top5)


def _with_database_retry(operation):
    """Wait out a database outage with backoff, so a batch neither spins through the queue nor is lost;
    if the outage outlasts the pauses, the error propagates and the batch goes back to the queue."""
    for pause in (*DATABASE_PAUSES, None):
        try:
            return operation()
        except OperationalError:
            db.session.rollback()
            if pause is None:
                raise
            logger.warning("database unavailable; retrying in %ss", pause, exc_info=True)
            time.sleep(pause)
