"""Completion events: workers announce ended jobs on a fanout exchange; every waiter hears them.

One small message per batch, ``{"jobs": {"<uuid>": "<status>", ...}}``, on the fanout
exchange ``<CELERY_QUEUE>.events`` (RabbitMQ only). Each waiter (``webapp.waiter``, on any
host) binds an exclusive auto-delete queue to it. An event is a hint that saves polling:
the row stays the truth, so a lost event only delays a waiter until its next check.
"""

import logging

from flask import current_app
from kombu import Exchange

logger = logging.getLogger(__name__)


def events_exchange_name(base_queue: str) -> str:
    return f"{base_queue}.events"


def broker_urls(broker_url: str) -> list[str]:
    """Each URL of a broker failover list (``url1;url2;...``, as Celery and kombu take it), in order,
    spelled for AMQP clients other than kombu (``amqp://``, not kombu's ``pyamqp://``)."""
    return [url.strip().replace("pyamqp://", "amqp://", 1) for url in broker_url.split(";") if url.strip()]


def has_fanout(broker_url: str) -> bool:
    """Whether completion events are published: on RabbitMQ, not on the embedded filesystem broker."""
    return broker_url.startswith(("amqp", "pyamqp"))


def publish_completions(statuses: dict[str, str]) -> bool:
    """Announce the ended jobs in one message; never raises (the outcomes are committed already)."""
    celery = current_app.extensions["celery"]
    if not statuses or not has_fanout(celery.conf.broker_url):
        return False
    exchange = Exchange(events_exchange_name(current_app.config["CELERY_QUEUE"]), "fanout", durable=False)
    try:
        with celery.producer_pool.acquire(block=True, timeout=2) as producer:
            producer.publish(
                {"jobs": statuses},
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
