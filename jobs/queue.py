"""Publishing a job by task name, so the publisher never imports the worker's code.

Where a job goes decides who waits for whom (``jobs.broker``, ``tasks.batching``): a single
upload goes to the interactive queue, which the worker serves first; bulk work goes to its
client's bulk lane, and the worker takes the lanes in turn, so one client's backlog never
queues another client's images behind it.
"""

import logging
import uuid
import zlib

from flask import current_app

from config.settings import Settings, current_settings
from jobs.broker import BULK_CHUNK, CLASSIFY_TASK, bulk_queue_name

logger = logging.getLogger(__name__)


def bulk_lane(client: str, lanes: int) -> int:
    """The lane of ``client`` (the API key's id, or the batch id without keys): hashed (CRC-32, the
    same in every process), so two clients share a lane with probability 1/``lanes``."""
    return zlib.crc32(client.encode()) % lanes


def queue_for(settings: Settings, bulk: bool, client: str) -> str:
    """The queue a job is published to: the interactive one, or its client's bulk lane."""
    if not bulk:
        return settings.CELERY_QUEUE
    return bulk_queue_name(settings.CELERY_QUEUE, bulk_lane(client, settings.BULK_LANES))


def publish_job(prediction_uuid: str, image_url: str, *, bulk: bool = False, client: str = "") -> bool:
    """Publish the job; False if the broker refused (the row stays pending for the sweeper).

    ``bulk`` says the job came in a batch, ``client`` whose work it is (the API key's id, or the
    batch id without keys): what fair sharing between clients routes by."""
    return publish_jobs([(prediction_uuid, image_url)], bulk=bulk, client=client) == 1


def publish_jobs(jobs: list[tuple[str, str]], *, bulk: bool = False, client: str = "") -> int:
    """Publish (uuid, image URL) jobs over one producer; returns how many the broker took.

    A single upload is one message (``args``: uuid, URL); bulk work goes ``BULK_CHUNK`` jobs to a
    message (``args``: a list of [uuid, URL]). A refused publish leaves its rows pending for the
    sweeper, and the rest are still tried."""
    if not jobs:
        return 0
    celery = current_app.extensions["celery"]
    queue = queue_for(current_settings(), bulk, client)
    size = BULK_CHUNK if bulk else 1
    published = 0
    try:
        # Through this Flask app's own Celery app, not the process-wide default.
        with celery.producer_or_acquire() as producer:
            for start in range(0, len(jobs), size):
                chunk = jobs[start : start + size]
                args, task_id, argsrepr = _message(chunk, bulk)
                # The first publish declares the queue; the others skip Celery's per-message declare
                # (a copy and bind of the queue each time: half the web's cost of a batch image).
                declare: list[object] | None = None if start == 0 else []
                try:
                    # The reprs given, so Celery skips its saferepr walks of the arguments (plain strings here).
                    celery.send_task(
                        CLASSIFY_TASK,
                        args=args,
                        task_id=task_id,
                        argsrepr=argsrepr,
                        kwargsrepr="{}",
                        producer=producer,
                        declare=declare,
                        queue=queue,
                    )
                    published += len(chunk)
                except Exception:  # any broker or connection error: the sweeper publishes them again
                    for prediction_uuid, _ in chunk:
                        _log_refused(prediction_uuid)
    except Exception:  # no producer at all: every job waits for the sweeper
        logger.exception("no broker connection; %d jobs stay pending for the sweeper", len(jobs) - published)
    return published


def _message(chunk: list[tuple[str, str]], bulk: bool) -> tuple[tuple[object, ...], str, str]:
    """A message's args, task id and args repr: a single upload as (uuid, URL) under its job's uuid,
    bulk work as ([[uuid, URL], ...],) under an id of its own."""
    if not bulk:
        (job,) = chunk
        return job, job[0], repr(job)
    return ([list(job) for job in chunk],), str(uuid.uuid4()), f"<{len(chunk)} jobs>"


def _log_refused(prediction_uuid: str) -> None:
    logger.exception(
        "publish failed for %s; it stays pending and will be republished",
        prediction_uuid,
        extra={"uuid": prediction_uuid},
    )
