"""The webhook worker's entry point: ``celery -A tasks.webhook_worker:celery_app worker --pool threads``.

It consumes only the webhooks queue and loads no model, so HTTP waits on slow receivers
never take an inference process (see the Procfile's ``webhooks:`` line).
"""

from jobs.app import create_base_app
from jobs.broker import webhook_queue

flask_app = create_base_app(__name__)
celery_app = flask_app.extensions["celery"]
celery_app.conf.task_queues = (webhook_queue(flask_app.config["CELERY_QUEUE"]),)

import tasks.joblogs  # noqa: E402,F401  JSON log lines, as the web writes them
import tasks.webhooks  # noqa: E402,F401  registers the delivery task
