"""The webhook worker's entry point: ``celery -A tasks.webhook_worker:celery_app worker --pool threads``.

It consumes only the webhooks queue, answers only its own remote control, and loads no model, so
HTTP waits on slow receivers never take an inference process (see the Procfile's ``webhooks:`` line).
"""

from jobs.app import create_base_app
from jobs.webhooks import webhook_queue

flask_app = create_base_app(__name__)
celery_app = flask_app.extensions["celery"]
celery_app.conf.task_queues = (webhook_queue(flask_app.config["CELERY_QUEUE"]),)
# Its own control namespace: pool_grow, add_consumer and the like sent to the classification workers
# (a prefork pool on the job queue) would break this thread-pool worker; reach it with
# `celery -A tasks.webhook_worker:celery_app inspect ...` instead (docs/operations.md).
celery_app.conf.control_exchange = celery_app.conf.task_queues[0].name

import tasks.control  # noqa: E402,F401  drops control messages left for it by an earlier run
import tasks.joblogs  # noqa: E402,F401  JSON log lines, as the web writes them
import tasks.webhooks  # noqa: E402,F401  registers the delivery task
