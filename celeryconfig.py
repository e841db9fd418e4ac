"""Celery settings: a quorum queue with a delivery limit, late acks, and results kept in the database.

The queues themselves are defined in ``jobs.broker``; this module only derives Celery's options.

``celery_settings`` derives Celery's options from the service's settings; web and
worker both build their Celery app from it (``jobs.app.celery_init_app``).

On RabbitMQ the job queue is a quorum queue: the broker counts each message's
deliveries (``x-delivery-count``), the worker ends a job as failed once the
count reaches ``MAX_DELIVERIES`` (``tasks/batching.py``), and a message returned
more often than that (the worker could not even record the failure) is
dead-lettered to ``<queue>.dead`` instead of looping. Celery sees the quorum
queue and turns global QoS off by itself. The embedded broker (``embedded://``,
``jobs/embedded_broker.py``) counts deliveries and dead-letters the same way.
"""

from config.settings import Settings
from jobs import embedded_broker
from jobs.broker import (
    PURGE_TASK,
    REPUBLISH_TASK,
    REQUEUE_WEBHOOKS_TASK,
    control_namespace,
    is_rabbitmq,
    job_queues,
    webhook_queue,
)

RETENTION_SWEEP_SECONDS = 300


def celery_settings(settings: Settings) -> dict:
    queue = settings.CELERY_QUEUE
    return {
        "broker_url": settings.CELERY_BROKER_URL,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 4,
        # AMQP heartbeats (both sides' offers, the smaller wins; RabbitMQ offers 60 s): a worker whose
        # host vanishes is declared dead after about two periods, and its unacked jobs go to the others.
        "broker_heartbeat": settings.BROKER_HEARTBEAT,
        "broker_transport_options": _transport_options(settings),
        # A failed publish must not hold an HTTP request for long: the row is
        # already committed and the sweeper publishes it again later.
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        "task_queues": job_queues(settings),
        # Celery's consumer without the native-delayed-delivery step, which stalls every reconnection
        # while one node of a broker cluster is down (tasks/consumer.py says why).
        "worker_consumer": "tasks.consumer:WorkerConsumer",
        # Remote control (`celery -A tasks.worker:celery_app control ...`, Flower): this deployment's
        # classification workers only; the webhook worker has its own (tasks/webhook_worker.py).
        "control_exchange": control_namespace(queue),
        "task_default_queue": queue,
        "task_default_exchange": queue,
        "task_default_routing_key": queue,
        "task_default_delivery_mode": "persistent",
        # A message is acked only once its result is committed; a worker that
        # dies mid-task leaves it on the broker for another worker.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Batches: up to batch_max_size jobs in one inference call, flushed after
        # batch_max_wait seconds at most. Each process may hold two batches'
        # worth of unacked messages: one running, the next one filling.
        "batch_max_size": settings.BATCH_MAX_SIZE,
        "batch_max_wait": settings.BATCH_MAX_WAIT,
        "worker_prefetch_multiplier": 2 * settings.BATCH_MAX_SIZE,
        # Results live in the predictions table, not in a Celery result backend.
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        # Task events cost a broker publish per job, so they stay off until a monitor asks:
        # Flower switches them on in the workers it watches (`celery control enable_events`).
        "worker_send_task_events": False,
        "beat_schedule": {
            "republish-stale-pending": {
                "task": REPUBLISH_TASK,
                "schedule": max(settings.REPUBLISH_PENDING_AFTER // 2, 5),
            },
            # Old jobs (RETENTION_DAYS), expired idempotency keys and orphan images, a chunk at a time.
            "purge-expired": {"task": PURGE_TASK, "schedule": RETENTION_SWEEP_SECONDS},
            # Run by the webhook worker (tasks/webhook_delivery.py), on its own queue.
            "requeue-unsent-webhooks": {
                "task": REQUEUE_WEBHOOKS_TASK,
                "schedule": 60,
                "options": {"queue": webhook_queue(queue)},
            },
        },
    }


def _transport_options(settings: Settings) -> dict:
    if settings.CELERY_BROKER_URL.startswith(f"{embedded_broker.SCHEME}://"):
        # The embedded broker (jobs/embedded_broker.py): one SQLite file that web and worker share.
        return {
            "path": str(settings.broker_file),
            # As the quorum queues' x-delivery-limit: one more than the worker's own limit.
            "delivery_limit": settings.MAX_DELIVERIES + 1,
        }
    if is_rabbitmq(settings.CELERY_BROKER_URL):
        # RabbitMQ confirms each publish, so a 202 is only sent for a stored message.
        return {"confirm_publish": True}
    return {}
