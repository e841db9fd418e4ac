"""The worker's entry point: ``celery -A tasks.worker:celery_app worker`` (also beat and flower).

Like ``make_celery.py`` in Flask's ``examples/celery``: the shared base app
(settings, database, image store, Celery) plus the worker's own tasks and
signal handlers, and none of the web's routes.
"""

from celery.signals import worker_init

from jobs.app import create_base_app
from jobs.broker import dead_letter_queue, is_rabbitmq

flask_app = create_base_app(__name__)
celery_app = flask_app.extensions["celery"]

import tasks.classify  # noqa: E402,F401  registers the batch task
import tasks.joblogs  # noqa: E402,F401  JSON log lines, as the web writes them
import tasks.metrics_endpoint  # noqa: E402,F401  the worker's own /metrics (WORKER_METRICS_PORT)
import tasks.presence  # noqa: E402,F401  publishes this worker's model for /health
import tasks.retention  # noqa: E402,F401  registers the retention task that beat schedules
import tasks.store_check  # noqa: E402,F401  warns at start when a file:// image store is not on this host
import tasks.sweeper  # noqa: E402,F401  registers the sweeper that beat schedules
import tasks.worker_model  # noqa: E402,F401  checks the weights at start, loads the model per pool process


@worker_init.connect
def declare_dead_letter_queue(**_):
    """The job queue dead-letters into it; without it RabbitMQ would drop such messages."""
    settings = flask_app.extensions["settings"]
    if is_rabbitmq(settings.CELERY_BROKER_URL):
        with celery_app.connection_for_write() as connection:
            dead_letter_queue(settings.CELERY_QUEUE)(connection.default_channel).declare()
