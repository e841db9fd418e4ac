"""What follows a job's end, wherever it ended (worker, sweeper, a cancel): tell the waiters, send webhooks.

Called after the outcomes are committed. Neither step may undo or fail the caller's work.
"""

import logging

from jobs.events import publish_completions
from jobs.webhooks import schedule_webhooks

logger = logging.getLogger(__name__)


def announce_ended(statuses: dict[str, str]) -> None:
    """``statuses`` maps each ended job's uuid to its final status."""
    if not statuses:
        return
    publish_completions(statuses)
    try:
        schedule_webhooks(statuses)
    except Exception:  # the row is final; a webhook lost here is logged, not retried by the batch
        logger.exception("could not queue the webhooks of %d jobs", len(statuses))
