"""Webhook deliveries: their queue, the backoff between attempts, and the record of each attempt.

Deliveries run in their own worker (``tasks.webhook_worker``) on the queue
``<CELERY_QUEUE>.webhooks``, never in the inference pool. On RabbitMQ it and its delay queues are
quorum queues, like the job queue: replicated on every node of a cluster, so a delivery waiting
there survives the loss of one node.

Backoff without ETAs. A Celery countdown keeps the message unacked inside the worker
until it is due: past RabbitMQ's ``consumer_timeout`` (30 min) the channel is closed, and
once the inference queue is a quorum queue Celery reroutes countdowns through its
native-delayed-delivery exchanges only for topic exchanges. So on RabbitMQ a retry is
published to a delay queue of its own (``<queue>.webhooks.delay-<s>s``, one per delay, so
no message waits behind a longer one) whose ``x-message-ttl`` dead-letters it back into
the webhooks queue when due; the broker holds it, no worker does. The delay queues are
durable and never expire (an ``x-expires`` would drop the messages inside); with delays
doubling up to LONGEST_DELAY there are about seven. Other brokers (the
embedded filesystem one) have no TTL or dead-lettering, and use a plain countdown.
"""

from flask import current_app
from kombu import Exchange, Queue
from sqlalchemy import select

from jobs.database import db
from jobs.records import Prediction, Timestamp, utcnow

DELIVER_TASK = "deliver_webhook"
REQUEUE_TASK = "requeue_unsent_webhooks"
LONGEST_DELAY = 600  # seconds between two attempts at most, so there are few delay queues


class WebhookDelivery(db.Model):
    """One attempt to deliver a job's result: what the receiver answered, or the error."""

    __tablename__ = "webhook_deliveries"

    id = db.Column(db.Integer, primary_key=True, autoincrement=True)
    uuid = db.Column(db.String(36), db.ForeignKey("predictions.uuid", ondelete="CASCADE"), nullable=False, index=True)
    attempt = db.Column(db.Integer, nullable=False)
    attempted_at = db.Column(Timestamp, nullable=False, default=utcnow)
    status_code = db.Column(db.Integer)
    error = db.Column(db.String(500))
    duration = db.Column(db.Float, nullable=False)


def webhook_queue(base_queue: str) -> Queue:
    """The quorum queue deliveries wait in (other brokers ignore the type)."""
    name = f"{base_queue}.webhooks"
    return Queue(
        name, Exchange(name, "direct"), routing_key=name, durable=True, queue_arguments={"x-queue-type": "quorum"}
    )


def delay_queue(base_queue: str, seconds: int) -> Queue:
    """A queue where a retry waits ``seconds``, then is dead-lettered into the webhooks queue."""
    target = webhook_queue(base_queue)
    name = f"{target.name}.delay-{seconds}s"
    return Queue(
        name,
        Exchange("", "direct"),
        routing_key=name,
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",  # a quorum queue honours message TTLs and dead-letters from RabbitMQ 3.10
            "x-message-ttl": seconds * 1000,
            "x-dead-letter-exchange": target.exchange.name,
            "x-dead-letter-routing-key": target.routing_key,
        },
    )


def retry_delay(failed_attempts: int, first: float) -> int:
    """Seconds before the next attempt: ``first``, doubling, at most LONGEST_DELAY."""
    return int(min(first * 2 ** (failed_attempts - 1), LONGEST_DELAY))


def retry_schedule(first: float, budget: float) -> list[int]:
    """The delays before attempts 2, 3, ... while the total stays within ``budget`` seconds."""
    delays, total = [], 0
    while True:
        delay = retry_delay(len(delays) + 1, first)
        if total + delay > budget:
            return delays
        delays.append(delay)
        total += delay


def schedule_webhooks(uuids) -> int:
    """Queue the first delivery of each of these (ended) jobs that has a callback URL."""
    uuids = list(uuids)
    if not uuids:
        return 0
    with_callback = db.session.scalars(
        select(Prediction.uuid).where(Prediction.uuid.in_(uuids), Prediction.callback_url.is_not(None))
    ).all()
    db.session.rollback()  # end the read transaction
    for prediction_uuid in with_callback:
        send_delivery(prediction_uuid, attempt=1, delay=0)
    return len(with_callback)


def send_delivery(prediction_uuid: str, attempt: int, delay: int) -> None:
    """Publish attempt ``attempt`` to run in ``delay`` seconds (see the module's docstring)."""
    celery = current_app.extensions["celery"]
    base = current_app.config["CELERY_QUEUE"]
    options = {"queue": webhook_queue(base)}
    if delay > 0:
        if celery.conf.broker_url.startswith(("amqp", "pyamqp")):
            options = {"queue": delay_queue(base, delay)}
        else:
            options["countdown"] = delay
    celery.send_task(DELIVER_TASK, args=(prediction_uuid, attempt), **options)
