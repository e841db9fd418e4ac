"""Celery settings: durable queue, late acks, and results kept in the database.

Loaded by ``tasks.celery_init_app`` with ``config_from_object``. Connection
URLs come from the environment through ``config.settings``.
"""
from kombu import Exchange, Queue

from config.settings import load_settings

_settings = load_settings()

broker_url = _settings.broker_url
broker_connection_retry_on_startup = True
broker_connection_timeout = 4

if broker_url.startswith("filesystem://"):
    # The embedded broker: messages are files that web and worker share.
    _folder = _settings.broker_folder
    for _sub in ("queue", "control"):
        (_folder / _sub).mkdir(parents=True, exist_ok=True)
    broker_transport_options = {
        "data_folder_in": str(_folder / "queue"),
        "data_folder_out": str(_folder / "queue"),
        "control_folder": str(_folder / "control"),
    }
else:
    # RabbitMQ confirms each publish, so a 202 is only sent for a stored message.
    broker_transport_options = {"confirm_publish": True}

# A failed publish must not hold an HTTP request for long: the row is already
# committed and the sweeper publishes it again later.
task_publish_retry_policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}

task_queues = (Queue(_settings.queue_name, Exchange(_settings.queue_name), routing_key=_settings.queue_name, durable=True),)
task_default_queue = _settings.queue_name
task_default_exchange = _settings.queue_name
task_default_routing_key = _settings.queue_name
task_default_delivery_mode = "persistent"

# A message is acked only once its result is committed; a worker that dies
# mid-task leaves it on the broker for another worker.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1

# Results live in the predictions table, not in a Celery result backend.
task_ignore_result = True

task_serializer = "json"
accept_content = ["json"]

# Lets Flower and `celery events` see task progress.
worker_send_task_events = True
task_send_sent_event = True

beat_schedule = {
    "republish-stale-pending": {
        "task": "republish_stale_pending",
        "schedule": max(_settings.republish_pending_after // 2, 5),
    },
}

# Imported by the worker only: checks the weights at start, loads the model per child.
imports = ("tasks.worker_model",)
