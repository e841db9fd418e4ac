"""Publishing a job by task name, so the publisher never imports the worker's code."""

import logging

from flask import current_app

from jobs.broker import CLASSIFY_TASK

logger = logging.getLogger(__name__)


def publish_job(prediction_uuid: str, image_url: str) -> bool:
    """Publish the job; False if the broker refused (the row stays pending for the sweeper)."""
    try:
        # Through this Flask app's own Celery app, not the process-wide default.
        args = (prediction_uuid, image_url)
        # argsrepr given, so Celery skips its saferepr walk of the arguments (plain strings here).
        current_app.extensions["celery"].send_task(
            CLASSIFY_TASK, args=args, task_id=prediction_uuid, argsrepr=repr(args)
        )
        return True
    except Exception:  # any broker or connection error: the sweeper publishes it again
        logger.exception(
            "publish failed for %s; it stays pending and will be republished",
            prediction_uuid,
            extra={"uuid": prediction_uuid},
        )
        return False
