"""The broker layout, in one place: task names, every queue and exchange, and which broker is which.

Everything that publishes, consumes, declares or deletes asks this module, so a newcomer
finds here every entity the service creates on the broker (``entities``):

| entity | kind | what it is for |
|---|---|---|
| ``<CELERY_QUEUE>`` | quorum queue (RabbitMQ) | single uploads; ``x-delivery-limit`` bounds redeliveries |
| ``<CELERY_QUEUE>.bulk.<n>`` | as the one above | bulk jobs (``BULK_CHUNK`` a message), a lane per client |
| ``<CELERY_QUEUE>.dead`` | quorum queue | jobs returned too often, kept a week, never consumed |
| ``<CELERY_QUEUE>.events`` | fanout exchange | completion hints for the waiters (RabbitMQ only) |
| ``<CELERY_QUEUE>.webhooks`` | quorum queue (RabbitMQ) | webhook deliveries, consumed by the webhook worker |
| ``<CELERY_QUEUE>.webhooks.delay-<s>s`` | quorum queue with TTL | a webhook retry or busy delivery waiting ``s`` s |
| ``<CELERY_QUEUE>.pidbox`` | fanout exchange (Celery's, auto-delete) | remote control of the classification workers |
| ``<CELERY_QUEUE>.webhooks.pidbox`` | fanout exchange (Celery's, auto-delete) | remote control of the webhook worker |

Each queue's exchange has the queue's name (direct), except the delay queues, which are
published to through the default exchange. Every queue that holds work is a quorum queue: on a
cluster of three nodes it has a member on each, so it survives the loss of one node. Depends on
kombu and the settings only.
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
# Jobs of a batch per message on a bulk lane: each message costs the web's publish, the broker and the
# worker's consumer about a millisecond, whatever it carries. The worker still runs, paces and takes
# turns image by image (``tasks.batching``), and acks a message once all of its jobs are recorded.
BULK_CHUNK = 16
DEAD_LETTER_TTL_MS = 7 * 24 * 3600 * 1000
DEAD_LETTER_MAX_LENGTH = 100_000


def is_rabbitmq(url: str) -> bool:
    """RabbitMQ has quorum queues, TTLs, dead-lettering and fanout; the embedded brokers have none of them."""
    return url.startswith(("amqp", "pyamqp"))


def broker_urls(broker_url: str) -> list[str]:
    """Each URL of a broker failover list (``url1;url2;...``, as Celery and kombu take it), in order,
    spelled for AMQP clients other than kombu (``amqp://``, not kombu's ``pyamqp://``)."""
    return [url.strip().replace("pyamqp://", "amqp://", 1) for url in broker_url.split(";") if url.strip()]


def bulk_queue_name(base_queue: str, lane: int) -> str:
    return f"{base_queue}.bulk.{lane}"


def job_queue_names(base_queue: str, bulk_lanes: int) -> list[str]:
    """The interactive queue (single uploads; the name jobs always had) first, then the bulk lanes.

    The classification worker consumes them all, favouring the first (``tasks.batching``)."""
    return [base_queue, *(bulk_queue_name(base_queue, lane) for lane in range(bulk_lanes))]


def job_queues(settings: Settings) -> tuple[Queue, ...]:
    """Every job queue, all with the same delivery limit and dead letters."""
    return tuple(job_queue(settings, name) for name in job_queue_names(settings.CELERY_QUEUE, settings.BULK_LANES))


def job_queue(settings: Settings, name: str) -> Queue:
    """A job queue: on RabbitMQ a quorum queue whose messages are dead-lettered after too many deliveries.
    (The embedded broker counts deliveries and dead-letters too: ``jobs.embedded_broker``.)"""
    arguments = None
    if is_rabbitmq(settings.CELERY_BROKER_URL):
        dead = dead_letter_queue(settings.CELERY_QUEUE)
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
    """The quorum queue deliveries wait in (the embedded brokers ignore the type)."""
    name = f"{base_queue}.webhooks"
    return Queue(
        name, Exchange(name, "direct"), routing_key=name, durable=True, queue_arguments={"x-queue-type": "quorum"}
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
            "x-queue-type": "quorum",  # quorum queues honour message TTLs and dead-lettering from RabbitMQ 3.10
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


def entities(
    base_queue: str, webhook_first_retry: float, webhook_retry_budget: float, bulk_lanes: int
) -> tuple[list[str], list[str]]:
    """Names of every queue and exchange a deployment on ``base_queue`` may create: what an operator or test deletes."""
    delays = retry_schedule(webhook_first_retry, webhook_retry_budget)
    delays += [] if BUSY_DELAY in delays else [BUSY_DELAY]
    webhooks = webhook_queue(base_queue).name
    delayed = [delay_queue(base_queue, delay).name for delay in delays]
    jobs = job_queue_names(base_queue, bulk_lanes)
    queues = [*jobs, dead_letter_queue(base_queue).name, webhooks, *delayed]
    exchanges = [*jobs, dead_letter_queue(base_queue).exchange.name, webhooks, events_exchange(base_queue).name]
    return queues, exchanges
