"""The worker logs like the web (JSON lines), and each classification's lines carry its uuid.

The job's uuid is the Celery task id (``enqueue_classification`` publishes it so).
"""
from celery.signals import setup_logging, task_postrun, task_prerun

from config.logging import bind_job, configure_logging, unbind_job


@setup_logging.connect
def use_service_log_format(loglevel=None, **_):
    # Connecting to this signal stops Celery from installing its own plain-text handlers.
    configure_logging(loglevel if isinstance(loglevel, str) else "INFO")


@task_prerun.connect
def bind_task_job(task_id=None, task=None, **_):
    if task is not None and task.name == "classify_image":
        bind_job(task_id)


@task_postrun.connect
def unbind_task_job(**_):
    unbind_job()
