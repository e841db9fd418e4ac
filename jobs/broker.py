"""The broker layout, in one place: task names, every queue and exchange, and which broker is which.

Everything that publishes, consumes, declares or deletes asks this module, so a newcomer
finds here every entity the service creates on the broker (``entities``):

| entity | kind | what it is for |
|---|---|---|
| ``<CELERY_QUEUE>`` | quorum queue (RabbitMQ), plain elsewhere | jobs; ``x-delivery-limit`` bounds redeliveries |
| ``<CELERY_QUEUE>.dead`` | quorum queue | jobs returned too often, kept a week, never consumed |
| ``<CELERY_QUEUE>.events`` | fanout exchange | completion hints for the waiters (RabbitMQ only) |
| ``<CELERY_QUEUE>.webhooks`` | classic queue | webhook deliveries, consumed by the webhook worker |
| ``<CELERY_QUEUE>.webhooks.delay-<s>s`` | classic queue with TTL | a webhook retry or busy delivery waiting ``s`` s |
| ``<CELERY_QUEUE>.pidbox`` | fanout exchange (Celery's, auto-delete) | remote control of the classification workers |
| ``<CELERY_QUEUE>.webhooks.pidbox`` | fanout exchange (Celery's, auto-delete) | remote control of the webhook worker |

Each queue's exchange has the queue's name (direct), except the delay queues, which are
published to through the default exchange. Depends on kombu and the settings only.
"""

from kombu import Exchange, Queue

from config.settings import Settings

# Wire names of the tasks: messages already queued must stay readable, so these never change.
CLASSIFY_TASK = "classify_image"
DELIVER_TASK = "deliver_webhook"
DELIVER_BATCH_TASK = "deliver_batch_webhook"  # a batch's one webhook, when it completes
REQUEUE_WEBHOOKS_TASK = "requeue_unsent_webhooks"
REPUBLISH_TASK = "republish_stale_pending"
PURGE_TASK = "purge_expired"

LONGEST_DELAY = 600  # seconds between two webhook attempts at most, so there are few delay queues
BUSY_DELAY = 10  # seconds a delivery waits (in its delay queue) when its destination's slots are all taken
DEAD_LETTER_TTL_MS = 7 * 24 * 3600 * 1000
DEAD_LETTER_MAX_LENGTH = 100_000


def is_rabbitmq(url: str) -> bool:
    """RabbitMQ has quorum queues, TTLs, dead-lettering and fanout; the embedded brokers have none of them."""
    return url.startswith(("amqp", "pyamqp"))


def job_queue(settings: Settings) -> Queue:
    """The job queue: on RabbitMQ a quorum queue whose messages are dead-lettered after too many deliveries."""
    name = settings.CELERY_QUEUE
    arguments = None
    if is_rabbitmq(settings.CELERY_BROKER_URL):
        dead = dead_letter_queue(name)
        arguments = {
            "x-queue-type": "quorum",
            # One more than the worker's own limit, so the worker records the failure first.
            "x-delivery-limit": settings.MAX_DELIVERIES + 1,
            "x-dead-letter-exchange": dead.exchange.name,
            "x-dead-letter-routing-key": dead.routing_key,
        }
    return Queue(name, Exchange(name), routing_key=name, durable=True, queue_arguments=arguments)


def dead_letter_queue(base_queue: str) -> Queue:
    """Where RabbitMQ puts a job returned too often: kept a week for inspection, never consumed."""
    name = f"{base_queue}.dead"
    return Queue(
        name,
        Exchange(name),
        routing_key=name,
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": DEAD_LETTER_TTL_MS,
            "x-max-length": DEAD_LETTER_MAX_LENGTH,
        },
    )


def events_exchange(base_queue: str) -> Exchange:
    """The fanout exchange workers announce ended jobs on; each waiter binds a queue of its own."""
    return Exchange(f"{base_queue}.events", "fanout", durable=False)


def webhook_queue(base_queue: str) -> Queue:
    """The classic queue deliveries wait in (declared classic, whatever type new queues default to)."""
    name = f"{base_queue}.webhooks"
    return Queue(
        name, Exchange(name, "direct"), routing_key=name, durable=True, queue_arguments={"x-queue-type": "classic"}
    )


def control_namespace(base_queue: str) -> str:
    """Celery's ``control_exchange`` for the classification workers: ``celery control`` reaches this
    deployment's workers only, not another deployment's on the same broker nor the webhook worker."""
    return base_queue


def webhook_control_namespace(base_queue: str) -> str:
    """The webhook worker's own: commands for a prefork pool on the job queue (``pool_grow``,
    ``add_consumer``) would break its thread pool (docs/operations.md)."""
    return webhook_queue(base_queue).name


def delay_queue(base_queue: str, seconds: int) -> Queue:
    """A queue where a webhook retry waits ``seconds``, then is dead-lettered into the webhooks queue."""
    target = webhook_queue(base_queue)
    name = f"{target.name}.delay-{seconds}s"
    return Queue(
        name,
        Exchange("", "direct"),
        routing_key=name,
        durable=True,
        queue_arguments={
            "x-queue-type": "classic",
            "x-message-ttl": seconds * 1000,
            "x-dead-letter-exchange": target.exchange.name,
            "x-dead-letter-routing-key": target.routing_key,
        },
    )


def retry_delay(failed_attempts: int, first: float) -> int:
    """Seconds before the next webhook attempt: ``first``, doubling, at most LONGEST_DELAY."""
    return int(min(first * 2 ** (failed_attempts - 1), LONGEST_DELAY))


def retry_schedule(first: float, budget: float) -> list[int]:
    """The delays before attempts 2, 3, ... while the total stays within ``budget`` seconds: one delay queue each."""
    delays: list[int] = []
    total = 0
    while True:
        delay = retry_delay(len(delays) + 1, first)
        if total + delay > budget:
            return delays
        delays.append(delay)
        total += delay


def entities(base_queue: str, webhook_first_retry: float, webhook_retry_budget: float) -> tuple[list[str], list[str]]:
    """Names of every queue and exchange a deployment on ``base_queue`` may create: what an operator or test deletes."""
    delays = retry_schedule(webhook_first_retry, webhook_retry_budget)
    delays += [] if BUSY_DELAY in delays else [BUSY_DELAY]
    webhooks = webhook_queue(base_queue).name
    delayed = [delay_queue(base_queue, delay).name for delay in delays]
    queues = [base_queue, dead_letter_queue(base_queue).name, webhooks, *delayed]
    exchanges = [base_queue, dead_letter_queue(base_queue).exchange.name, webhooks, events_exchange(base_queue).name]
    return queues, exchanges
