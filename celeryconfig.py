"""Celery settings: durable queue, late acks, and results kept in the database.

``celery_settings`` turns the environment's settings into Celery's; the Flask
app factory passes the result to ``celery_init_app``.
"""
from kombu import Exchange, Queue

from config.settings import Settings


def celery_settings(settings: Settings) -> dict:
    queue = settings.queue_name
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 4,
        # AMQP heartbeats (both sides' offers, the smaller wins; RabbitMQ offers 60 s): a worker whose
        # host vanishes is declared dead after about two periods, and its unacked jobs go to the others.
        "broker_heartbeat": settings.broker_heartbeat,
        "broker_transport_options": _transport_options(settings),
        # A failed publish must not hold an HTTP request for long: the row is
        # already committed and the sweeper publishes it again later.
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        "task_queues": (Queue(queue, Exchange(queue), routing_key=queue, durable=True),),
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
        "batch_max_size": settings.batch_max_size,
        "batch_max_wait": settings.batch_max_wait,
        "worker_prefetch_multiplier": 2 * settings.batch_max_size,
        # Results live in the predictions table, not in a Celery result backend.
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        # Task events cost a broker publish per job, so they stay off until a monitor asks:
        # Flower switches them on in the workers it watches (`celery control enable_events`).
        "worker_send_task_events": False,
        # Imported by the worker only: checks the weights and the image store at start, loads the model
        # per child, and serves the worker's own metrics.
        "imports": ("tasks.worker_model", "tasks.store_check", "tasks.metrics_endpoint"),
        "beat_schedule": {
            "republish-stale-pending": {
                "task": "republish_stale_pending",
                "schedule": max(settings.republish_pending_after // 2, 5),
            },
        },
    }


def _transport_options(settings: Settings) -> dict:
    if settings.broker_url.startswith("filesystem://"):
        # The embedded broker: messages are files that web and worker share.
        folders = {name: settings.broker_folder / name for name in ("queue", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        return {
            # Polled for new files; kombu's default of once a second would cap make run at ~1 job/s.
            "polling_interval": 0.05,
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "control_folder": str(folders["control"]),
        }
    # RabbitMQ confirms each publish, so a 202 is only sent for a stored message.
    return {"confirm_publish": True}
