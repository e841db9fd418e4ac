"""Publishing a job by task name, so the publisher never imports the worker's code.

Where a job goes decides who waits for whom (``jobs.broker``, ``tasks.batching``): a single
upload goes to the interactive queue, which the worker serves first; bulk work goes to its
client's bulk lane, and the worker takes the lanes in turn, so one client's backlog never
queues another client's images behind it.
"""

import logging
import zlib

from flask import current_app

from config.settings import Settings, current_settings
from jobs.broker import CLASSIFY_TASK, bulk_queue_name

logger = logging.getLogger(__name__)


def bulk_lane(client: str | None, api_keys: tuple[str, ...], lanes: int) -> int:
    """The lane of ``client`` (an API key as sent, or a batch id without keys).

    A configured key gets its own lane while there are at most ``lanes`` keys (its place in
    ``API_KEYS``); any other client is hashed (CRC-32, the same in every process), so two of them
    share a lane with probability 1/``lanes``.
    """
    if client in api_keys:
        return api_keys.index(client) % lanes
    return zlib.crc32((client or "").encode()) % lanes


def queue_for(settings: Settings, bulk: bool, client: str | None) -> str:
    """The queue a job is published to: the interactive one, or its client's bulk lane."""
    if not bulk:
        return settings.CELERY_QUEUE
    return bulk_queue_name(settings.CELERY_QUEUE, bulk_lane(client, settings.API_KEYS, settings.BULK_LANES))


def publish_job(prediction_uuid: str, image_url: str, *, bulk: bool = False, client: str | None = None) -> bool:
    """Publish the job; False if the broker refused (the row stays pending for the sweeper).

    ``bulk`` marks work submitted in bulk (a batch), ``client`` says whose (see ``bulk_lane``);
    a single upload is interactive.
    """
    try:
        # Through this Flask app's own Celery app, not the process-wide default.
        args = (prediction_uuid, image_url)
        # argsrepr given, so Celery skips its saferepr walk of the arguments (plain strings here).
        current_app.extensions["celery"].send_task(
            CLASSIFY_TASK,
            args=args,
            task_id=prediction_uuid,
            argsrepr=repr(args),
            queue=queue_for(current_settings(), bulk, client),
        )
        return True
    except Exception:  # any broker or connection error: the sweeper publishes it again
        logger.exception(
            "publish failed for %s; it stays pending and will be republished",
            prediction_uuid,
            extra={"uuid": prediction_uuid},
        )
        return False
