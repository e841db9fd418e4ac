"""The worker logs like the web (JSON lines).

A batch covers many jobs, so the classify task tags each line about a job
with ``extra={"uuid": ...}``; Celery's own "Task ... received" lines carry the
task id, which is the job's uuid.
"""

import logging

from celery.signals import setup_logging

from config.logging import configure_logging


@setup_logging.connect
def use_service_log_format(loglevel=None, **_):
    """At ``--loglevel`` (Celery passes it as a number, e.g. 30 for WARNING). Connecting to this
    signal stops Celery from installing its own plain-text handlers."""
    configure_logging(logging.getLevelName(loglevel) if isinstance(loglevel, int) else loglevel or "INFO")
