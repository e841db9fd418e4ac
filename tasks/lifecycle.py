"""What a worker does from start to stop, in the order Celery runs it: the one place its signals are connected.

Inference worker (``tasks/worker.py`` calls ``connect_worker``):

0. ``celeryd_init`` (parent): on the embedded broker, the control messages sent to this worker while
   it was down are dropped (``tasks/control.py``).
1. ``setup_logging`` (parent): JSON lines, as the web writes them, at ``--loglevel``.
2. ``worker_init`` (parent, before the pool forks), in this order: the private metrics folder and
   endpoint; a warning when a file:// image store is not on this host; a lower CPU priority, which
   the pool inherits; the model checked and, for LiteRT, converted (no weights: the worker refuses
   to start); on RabbitMQ, the dead-letter queue the job queue points at.
3. ``worker_process_init`` (each pool process): database connections inherited across the fork
   dropped, then the classifier built.
4. ``worker_ready`` (parent): this worker's model recorded for ``/health``, then every
   ``HEARTBEAT_SECONDS``.
5. ``worker_shutdown`` (parent): that record removed.

The webhook worker (``tasks/webhook_worker.py`` calls ``connect_webhook_worker``) only drops its stale
control messages (0) and logs the same way (1).
What a worker keeps meanwhile is in ``tasks.state.worker_state``.
"""

import logging
import os

from celery.signals import (
    celeryd_init,
    setup_logging,
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)
from flask import Flask

from config.logging import configure_logging
from config.settings import Settings
from jobs.broker import dead_letter_queue, is_rabbitmq
from tasks.control import drop_stale_control_messages
from tasks.metrics_endpoint import start_worker_metrics
from tasks.presence import announce_model, drop_inherited_connections, withdraw
from tasks.state import WorkerState, worker_state
from tasks.store_check import warn_if_image_directory_is_missing
from tasks.worker_model import load_classifier, prepare_model_or_refuse_to_start


def use_service_log_format(loglevel=None, **_) -> None:
    """At ``--loglevel``, which Celery passes as a number (30 for WARNING). Connecting to
    setup_logging stops Celery from installing its own plain-text handlers."""
    configure_logging(logging.getLevelName(loglevel) if isinstance(loglevel, int) else loglevel or "INFO")


def yield_cpu_to_the_web(settings: Settings) -> None:
    """On a shared host, answering POSTs promptly matters more than the next batch: the pool
    processes inherit a lower priority and still use every spare cycle."""
    os.nice(settings.WORKER_NICENESS)


def declare_dead_letter_queue(flask_app: Flask, settings: Settings) -> None:
    """The job queue dead-letters into it; without it RabbitMQ would drop such messages."""
    if is_rabbitmq(settings.CELERY_BROKER_URL):
        with flask_app.extensions["celery"].connection_for_write() as connection:
            dead_letter_queue(settings.CELERY_QUEUE)(connection.default_channel).declare()


def connect_webhook_worker() -> None:
    celeryd_init.connect(drop_stale_control_messages, weak=False, dispatch_uid="stale-control-messages")
    setup_logging.connect(use_service_log_format, weak=False, dispatch_uid="service-log-format")


def connect_worker(flask_app: Flask, state: WorkerState = worker_state) -> None:
    settings: Settings = flask_app.extensions["settings"]

    def at_start(**_):
        start_worker_metrics(state, settings)  # first, so that whatever counts later has its folder
        warn_if_image_directory_is_missing(settings)
        yield_cpu_to_the_web(settings)
        prepare_model_or_refuse_to_start(state, settings)
        declare_dead_letter_queue(flask_app, settings)

    def in_each_pool_process(**_):
        drop_inherited_connections(flask_app)
        load_classifier(state, settings)

    def when_ready(sender=None, **_):
        announce_model(flask_app, state, sender.hostname)

    def at_stop(**_):
        withdraw(flask_app, state)

    celeryd_init.connect(drop_stale_control_messages, weak=False, dispatch_uid="stale-control-messages")
    setup_logging.connect(use_service_log_format, weak=False, dispatch_uid="service-log-format")
    worker_init.connect(at_start, weak=False, dispatch_uid="worker-start")
    worker_process_init.connect(in_each_pool_process, weak=False, dispatch_uid="worker-pool-process")
    worker_ready.connect(when_ready, weak=False, dispatch_uid="worker-ready")
    worker_shutdown.connect(at_stop, weak=False, dispatch_uid="worker-stop")
