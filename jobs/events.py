"""Completion events: workers announce ended jobs on a fanout exchange; every waiter hears them.

One small message per batch, ``{"jobs": {"<uuid>": "<status>", ...}, "batches": [<id>, ...]}``
(``batches``: the batches those jobs completed), on the fanout
exchange ``<CELERY_QUEUE>.events`` (RabbitMQ only). Each waiter (``webapp.waiter``, on any
host) binds an exclusive auto-delete queue to it. An event is a hint that saves polling:
the row stays the truth, so a lost event only delays a waiter until its next check.
"""

import logging

from flask import current_app

from config.settings import current_settings
from jobs.broker import events_exchange, is_rabbitmq

logger = logging.getLogger(__name__)


def publish_completions(statuses: dict[str, str], batches=()) -> bool:
    """Announce the ended jobs and completed batches in one message; never raises (the outcomes
    are committed already)."""
    celery = current_app.extensions["celery"]
    if not (statuses or batches) or not is_rabbitmq(celery.conf.broker_url):
        return False
    exchange = events_exchange(current_settings().CELERY_QUEUE)
    try:
        with celery.producer_pool.acquire(block=True, timeout=2) as producer:
            producer.publish(
                {"jobs": statuses, "batches": list(batches)},
                exchange=exchange,
                routing_key="",
                declare=[exchange],
                serializer="json",
                delivery_mode="transient",
                retry=False,
            )
        return True
    except Exception:  # a waiter notices at its next check anyway
        logger.warning("could not publish the completion of %d jobs", len(statuses), exc_info=True)
        return False
