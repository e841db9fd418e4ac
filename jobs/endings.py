"""What follows a job's end, wherever it ended (worker, sweeper, a cancel): tell the waiters, send webhooks.

Called after the outcomes are committed. Neither step may undo or fail the caller's work. A job
that was its batch's last one also completes the batch (``jobs.batches.claim_completions``),
which is announced the same ways.
"""

import logging
from collections.abc import Iterable

from jobs.batches import batches_of, claim_completions
from jobs.database import db
from jobs.events import publish_completions
from jobs.webhook_schedule import schedule_batch_webhooks, schedule_webhooks

logger = logging.getLogger(__name__)


def announce_ended(statuses: dict[str, str]) -> None:
    """``statuses`` maps each ended job's uuid to its final status."""
    if not statuses:
        return
    try:
        with db.engine.begin() as connection:
            completed = claim_completions(connection, batches_of(connection, statuses))
    except Exception:  # the next GET of the batch claims it (jobs.batches.read_batch)
        logger.exception("could not check the batches of %d jobs", len(statuses))
        completed = []
    publish_completions(statuses, completed)
    try:
        schedule_webhooks(statuses)
    except Exception:  # the row is final; a webhook lost here is logged, not retried by the batch
        logger.exception("could not queue the webhooks of %d jobs", len(statuses))
    announce_batches_completed(completed, events=False)


def announce_batches_completed(batch_ids: Iterable[str], events: bool = True) -> None:
    """Wake the batches' waiters and queue their webhooks, once their completion was claimed."""
    batch_ids = list(batch_ids)
    if not batch_ids:
        return
    if events:
        publish_completions({}, batch_ids)
    try:
        schedule_batch_webhooks(batch_ids)
    except Exception:  # tasks.webhook_delivery.requeue_unsent_webhooks queues it again later
        logger.exception("could not queue the webhooks of %d batches", len(batch_ids))
