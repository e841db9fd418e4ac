"""Publishing a job by task name, so the publisher never imports the worker's code."""

import logging

from flask import current_app

from jobs.broker import CLASSIFY_TASK

logger = logging.getLogger(__name__)


def publish_job(prediction_uuid: str, image_url: str, *, bulk: bool = False, client: str = "") -> bool:
    """Publish the job; False if the broker refused (the row stays pending for the sweeper).

    ``bulk`` says the job came in a batch, ``client`` whose work it is (the API key's id, or the
    batch id without keys): what fair sharing between clients routes by."""
    return publish_jobs([(prediction_uuid, image_url)], bulk=bulk, client=client) == 1


def publish_jobs(jobs: list[tuple[str, str]], *, bulk: bool = False, client: str = "") -> int:
    """Publish (uuid, image URL) jobs over one producer; returns how many the broker took.

    A refused publish leaves its row pending for the sweeper, and the rest are still tried."""
    if not jobs:
        return 0
    celery = current_app.extensions["celery"]
    published = 0
    try:
        # Through this Flask app's own Celery app, not the process-wide default.
        with celery.producer_or_acquire() as producer:
            for prediction_uuid, image_url in jobs:
                args = (prediction_uuid, image_url)
                # The first publish declares the queue; the others skip Celery's per-message declare
                # (a copy and bind of the queue each time: half the web's cost of a batch image).
                declare: list[object] | None = None if published == 0 else []
                try:
                    # The reprs given, so Celery skips its saferepr walks of the arguments (plain strings here).
                    celery.send_task(
                        CLASSIFY_TASK,
                        args=args,
                        task_id=prediction_uuid,
                        argsrepr=repr(args),
                        kwargsrepr="{}",
                        producer=producer,
                        declare=declare,
                    )
                    published += 1
                except Exception:  # any broker or connection error: the sweeper publishes it again
                    _log_refused(prediction_uuid)
    except Exception:  # no producer at all: every job waits for the sweeper
        logger.exception("no broker connection; %d jobs stay pending for the sweeper", len(jobs) - published)
    return published


def _log_refused(prediction_uuid: str) -> None:
    logger.exception(
        "publish failed for %s; it stays pending and will be republished",
        prediction_uuid,
        extra={"uuid": prediction_uuid},
    )
