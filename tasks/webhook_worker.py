"""The webhook worker's entry point: ``celery -A tasks.webhook_worker:celery_app worker --pool threads``.

It consumes only the webhooks queue, answers only its own remote control, and loads no model, so
HTTP waits on slow receivers never take an inference process (see the Procfile's ``webhooks:`` line).
Its threads (``WEBHOOK_CONCURRENCY``, 200 by default) mostly wait on sockets; each attempt frees its
thread within ``WEBHOOK_ATTEMPT_TIMEOUT``, and one destination holds at most
``WEBHOOK_PER_DESTINATION`` of them.
"""

from config.settings import load_settings
from jobs.app import create_base_app
from jobs.broker import webhook_control_namespace, webhook_queue
from tasks.lifecycle import connect_webhook_worker

# The modules whose tasks this worker runs; Celery imports them when the worker starts.
TASK_MODULES = ("tasks.webhook_delivery",)

flask_app = create_base_app(__name__, load_settings())
celery_app = flask_app.extensions["celery"]
base_queue = flask_app.extensions["settings"].CELERY_QUEUE
celery_app.conf.task_queues = (webhook_queue(base_queue),)
# Reached with `celery -A tasks.webhook_worker:celery_app inspect ...`, never by the classification
# workers' commands (docs/operations.md).
celery_app.conf.control_exchange = webhook_control_namespace(base_queue)
celery_app.conf.include = TASK_MODULES
connect_webhook_worker()
# One message per thread: a worker holds no deliveries it cannot start (the inference workers'
# multiplier is sized for batches), so several webhook workers share the queue evenly.
celery_app.conf.worker_prefetch_multiplier = 1
