"""Webhook deliveries: their queue, the backoff between attempts, and the record of each attempt.

Deliveries run in their own worker (``tasks.webhook_worker``) on the quorum queue
``<CELERY_QUEUE>.webhooks``, never in the inference pool. The queues are defined in ``jobs.broker``.

Backoff without ETAs. A Celery countdown keeps the message unacked inside the worker
until it is due: past RabbitMQ's ``consumer_timeout`` (30 min) the channel is closed, and
once the inference queue is a quorum queue Celery reroutes countdowns through its
native-delayed-delivery exchanges only for topic exchanges. So on RabbitMQ a retry is
published to a delay queue of its own (``<queue>.webhooks.delay-<s>s``, one per delay, so
no message waits behind a longer one) whose ``x-message-ttl`` dead-letters it back into
the webhooks queue when due; the broker holds it, no worker does. The delay queues are
durable and never expire (an ``x-expires`` would drop the messages inside); with delays
doubling up to ``jobs.broker.LONGEST_DELAY`` there are about seven. Other brokers (the
embedded one) have no TTL or dead-lettering, and use a plain countdown.
"""

from flask import current_app
from sqlalchemy import select

from config.settings import current_settings
from jobs.batches import Batch
from jobs.broker import DELIVER_BATCH_TASK, DELIVER_TASK, delay_queue, is_rabbitmq, webhook_queue
from jobs.database import db
from jobs.records import Prediction, Timestamp, utcnow
from jobs.tracing import in_job_trace


class WebhookDelivery(db.Model):
    """One attempt to deliver a job's result: what the receiver answered, or the error."""

    __tablename__ = "webhook_deliveries"

    id = db.Column(db.Integer, primary_key=True, autoincrement=True)
    uuid = db.Column(db.String(36), db.ForeignKey("predictions.uuid", ondelete="CASCADE"), nullable=False, index=True)
    attempt = db.Column(db.Integer, nullable=False)
    attempted_at = db.Column(Timestamp, nullable=False, default=utcnow, index=True)  # /metrics counts recent ones
    status_code = db.Column(db.Integer)
    error = db.Column(db.String(500))
    duration = db.Column(db.Float, nullable=False)


def schedule_webhooks(uuids) -> int:
    """Queue the first delivery of each of these (ended) jobs that has a callback URL."""
    uuids = list(uuids)
    if not uuids:
        return 0
    query = select(Prediction.uuid).where(Prediction.uuid.in_(uuids), Prediction.callback_url.is_not(None))
    return len(queue_first_deliveries(query, DELIVER_TASK))


def schedule_batch_webhooks(batch_ids) -> int:
    """Queue the first delivery of each of these (completed) batches that has a callback URL."""
    batch_ids = list(batch_ids)
    if not batch_ids:
        return 0
    query = select(Batch.id).where(Batch.id.in_(batch_ids), Batch.callback_url.is_not(None))
    return len(queue_first_deliveries(query, DELIVER_BATCH_TASK))


def queue_first_deliveries(query, task: str) -> list[str]:
    """Queue attempt 1 of ``task`` (a job's or a batch's webhook) for each id ``query`` selects; the ids."""
    ids = list(db.session.scalars(query).all())
    db.session.rollback()  # end the read transaction before publishing
    for entity_id in ids:
        send_delivery(entity_id, attempt=1, delay=0, task=task)
    return ids


def send_delivery(prediction_uuid: str, attempt: int, delay: int, task: str = DELIVER_TASK) -> None:
    """Publish attempt ``attempt`` of ``task`` (a job's or a batch's webhook) to run in ``delay``
    seconds (see the module's docstring)."""
    celery = current_app.extensions["celery"]
    base = current_settings().CELERY_QUEUE
    options = {"queue": webhook_queue(base)}
    if delay > 0:
        if is_rabbitmq(celery.conf.broker_url):
            options = {"queue": delay_queue(base, delay)}
        else:
            options["countdown"] = delay
    with in_job_trace(prediction_uuid):  # from the worker's batch: into the job's trace (a retry is in it already)
        celery.send_task(task, args=(prediction_uuid, attempt), **options)
