"""One log format for web and worker: JSON lines, so logs can be searched by field.

Every line written while a job is in hand carries that job's ``uuid``: the web
binds it in the request that creates or reads the job, the worker for the task
that classifies it. While an OpenTelemetry span is active (jobs/tracing.py), the line also
carries its ``trace_id`` and ``span_id``. Celery's own task lines ("Task ... received") carry the
task id, which is the job's uuid, in their arguments; those are picked up too.
"""

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.trace import format_span_id, format_trace_id

_current_job: ContextVar[str | None] = ContextVar("current_job", default=None)


def bind_job(job_uuid: str) -> None:
    """Tag every following log line of this request or task with ``job_uuid``."""
    _current_job.set(job_uuid)


def unbind_job() -> None:
    _current_job.set(None)


class JobContextFilter(logging.Filter):
    """Adds ``record.uuid`` from the bound job, or from Celery's ``{"id": ...}`` log arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = getattr(record, "uuid", None) or _current_job.get()  # extra={"uuid": ...} wins
        if job is None and isinstance(record.args, dict):
            job = record.args.get("id")
        record.uuid = job
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        job = getattr(record, "uuid", None)
        if job:
            line["uuid"] = job
        span = trace.get_current_span().get_span_context()
        if span.is_valid:  # the same ids as the trace backend shows, so a log search and a trace agree
            line["trace_id"] = format_trace_id(span.trace_id)
            line["span_id"] = format_span_id(span.span_id)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def logging_config(level: str = "INFO") -> dict:
    """The ``dictConfig`` shared by Gunicorn (``gunicorn.conf.py``) and the Celery worker."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"job": {"()": JobContextFilter}},
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["job"],
            },
        },
        "root": {"level": level.upper(), "handlers": ["stdout"]},
        # Gunicorn's own loggers write through the root handler instead of their plain-text ones.
        # Its access lines are off: the proxy in front (deploy/nginx) logs each request once.
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))
