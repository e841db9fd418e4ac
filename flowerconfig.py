"""Flower reads this file from the working directory at start (its ``--conf`` default).

Flower never starts open: its login comes from ``FLOWER_BASIC_AUTH`` in the environment (Flower
reads ``FLOWER_*`` variables itself), never from its command line, where ``ps`` would show it to
every local user. `make run` generates one when none is set.

``broker_api``: RabbitMQ's management API, where Flower's Broker page and ``/api/queues/length`` read
queue depths (``Settings.management_api``: FLOWER_BROKER_API, or derived from the broker URL), so its
login stays off the command line too. This file overrides Flower's own FLOWER_* variables, which is
why FLOWER_BROKER_API goes through the settings; command-line options win over both.

Flower lists only the queues its workers consume. The dead-letter queue has no consumer by design and
a webhook retry waits in a delay queue nobody consumes, so their names are added to what it asks for.
"""

import os

from flower.views import BaseHandler

from config.settings import load_settings
from jobs.broker import entities

if not os.environ.get("FLOWER_BASIC_AUTH"):
    raise SystemExit("FLOWER_BASIC_AUTH is not set: expected user:password (Flower never starts without a login)")

_settings = load_settings()
broker_api = _settings.management_api
# Every queue this deployment declares (jobs.broker): job, dead-letter, webhooks and delay queues.
_service_queues, _ = entities(_settings.CELERY_QUEUE, _settings.WEBHOOK_FIRST_RETRY, _settings.WEBHOOK_RETRY_SECONDS)
_consumed_queue_names = BaseHandler.get_active_queue_names


def _queue_names(handler) -> list[str]:
    return sorted(set(_consumed_queue_names(handler)) | set(_service_queues))


BaseHandler.get_active_queue_names = _queue_names
