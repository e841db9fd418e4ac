"""Flower's options from the service's settings: ``celery flower`` reads ./flowerconfig.py by default.

``broker_api``: RabbitMQ's management API, where Flower's Broker page and ``/api/queues/length`` read
queue depths (``Settings.management_api``: FLOWER_BROKER_API, or derived from the broker URL). Read
here, its login never shows in the process's arguments. This file overrides Flower's own FLOWER_*
variables, which is why FLOWER_BROKER_API goes through the settings; command-line options win over both.

Flower lists only the queues its workers consume. The dead-letter queue has no consumer by design and
a webhook retry waits in a delay queue nobody consumes, so their names are added to what it asks for.
"""

from celeryconfig import dead_letter_queue, job_queue
from flower.views import BaseHandler

from config.settings import load_settings
from jobs.webhooks import delay_queue, retry_schedule, webhook_queue

_settings = load_settings()
broker_api = _settings.management_api


def _service_queue_names(settings) -> set[str]:
    """Every queue this service declares on RabbitMQ, for its settings."""
    delays = retry_schedule(settings.WEBHOOK_FIRST_RETRY, settings.WEBHOOK_RETRY_SECONDS)
    queues = [job_queue(settings), dead_letter_queue(settings), webhook_queue(settings.CELERY_QUEUE)]
    queues += [delay_queue(settings.CELERY_QUEUE, delay) for delay in delays]
    return {queue.name for queue in queues}


_consumed_queue_names = BaseHandler.get_active_queue_names


def _queue_names(handler) -> list[str]:
    return sorted(set(_consumed_queue_names(handler)) | _service_queue_names(_settings))


BaseHandler.get_active_queue_names = _queue_names
