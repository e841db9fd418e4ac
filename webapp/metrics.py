"""``GET /metrics`` for Prometheus: requests, latency, jobs by status, queue depth, ages, webhook outcomes, batches.

Request figures are counted per process; with ``PROMETHEUS_MULTIPROC_DIR`` set
(``gunicorn.conf.py`` sets a private one) the figures of every Gunicorn worker of
this server are added up here. Workers serve their own figures (``tasks/metrics_endpoint.py``).
Jobs by status and queue depth are read from the database and the broker at scrape
time, so they are never stale.
"""

import logging
import os
import time
from datetime import timedelta

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from jobs.batches import Batch
from jobs.database import db
from jobs.records import CANCELLED, DONE, FAILED, PENDING, Prediction, utcnow
from jobs.webhook_schedule import WebhookDelivery
from jobs.workers import WorkerRecord
from webapp.auth import require_metrics_key

logger = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)
bp.before_request(require_metrics_key)

REQUESTS = Counter("http_requests_total", "HTTP requests by route and status.", ["method", "route", "status"])
LATENCY = Histogram("http_request_duration_seconds", "Time to answer an HTTP request.", ["method", "route"])
# Labels take a bounded set of values, so a client inventing methods or paths cannot grow /metrics.
# The window webhook_attempts_recent and batches_completed_recent count over (the alert on webhook
# failures compares it with itself; the batch panel divides by it for a rate).
WEBHOOK_WINDOW = timedelta(minutes=5)
KNOWN_METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"})


def _method() -> str:
    return request.method if request.method in KNOWN_METHODS else "other"


def _route() -> str:
    """The URL rule, not the path: one series for every /predictions/<uuid>."""
    return request.url_rule.rule if request.url_rule else "unmatched"


def _start_timer():
    g.metrics_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    method, route = _method(), _route()
    REQUESTS.labels(method, route, str(response.status_code)).inc()
    if "metrics_started" in g:
        LATENCY.labels(method, route).observe(time.perf_counter() - g.metrics_started)
    return response


class ScrapeTimeCollector:
    """Jobs by status from the predictions table and messages waiting in the queue."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        jobs = GaugeMetricFamily("prediction_jobs", "Predictions in the database by status.", labels=["status"])
        counts = dict.fromkeys((PENDING, DONE, FAILED, CANCELLED), 0)
        try:
            counts.update(db.session.execute(select(Prediction.status, func.count()).group_by(Prediction.status)).all())
        except Exception:
            db.session.rollback()
            logger.warning("metrics: the database is unreachable; job counts unknown")
            counts = dict.fromkeys(counts, float("nan"))
        for status, count in sorted(counts.items()):
            jobs.add_metric([status], count)
        yield jobs

        yield from self._ages()
        yield from self._webhook_attempts()
        yield from self._batches()

        celery = self.app.extensions["celery"]
        queue = celery.conf.task_default_queue
        depth = GaugeMetricFamily(
            "queue_messages", "Jobs waiting in the broker queue (NaN: broker unreachable).", labels=["queue"]
        )
        depth.add_metric([queue], self._queue_depth(celery, queue))
        yield depth

    @staticmethod
    def _ages():
        """How long the oldest pending job has waited, and since when no worker has been heard from:
        the two figures the alerts on a stuck pipeline watch (``deploy/prometheus/alerts.yml``)."""
        oldest = GaugeMetricFamily(
            "prediction_oldest_pending_seconds", "Age of the oldest pending job (0: none; NaN: database unreachable)."
        )
        heartbeat = GaugeMetricFamily(
            "last_worker_heartbeat_age_seconds",
            "Seconds since the most recent heartbeat of any worker (+Inf: no worker registered).",
        )
        try:
            now = utcnow()
            created = db.session.execute(select(func.min(Prediction.created_at)).where(Prediction.status == PENDING))
            seen = db.session.execute(select(func.max(WorkerRecord.last_seen)))
            created, seen = created.scalar(), seen.scalar()
            oldest.add_metric([], (now - created).total_seconds() if created else 0)
            heartbeat.add_metric([], (now - seen).total_seconds() if seen else float("inf"))
        except Exception:
            db.session.rollback()
            oldest.add_metric([], float("nan"))
            heartbeat.add_metric([], float("nan"))
        yield oldest
        yield heartbeat

    @staticmethod
    def _webhook_attempts():
        """Webhook delivery attempts of the last WEBHOOK_WINDOW, delivered (2xx) or failed."""
        attempts = GaugeMetricFamily(
            "webhook_attempts_recent",
            f"Webhook delivery attempts in the last {WEBHOOK_WINDOW.seconds} s, by outcome.",
            labels=["outcome"],
        )
        delivered = WebhookDelivery.status_code.between(200, 299)
        counts = {"delivered": 0, "failed": 0}
        try:
            rows = db.session.execute(
                select(delivered, func.count())
                .where(WebhookDelivery.attempted_at >= utcnow() - WEBHOOK_WINDOW)
                .group_by(delivered)
            ).all()
            for ok, count in rows:
                counts["delivered" if ok else "failed"] += count
        except Exception:
            db.session.rollback()
            counts = dict.fromkeys(counts, float("nan"))
        for outcome, count in counts.items():
            attempts.add_metric([outcome], count)
        yield attempts

    @staticmethod
    def _batches():
        """Batches whose end is not yet claimed, and those that ended in the last WEBHOOK_WINDOW.

        A windowed count rather than a total of completed rows: retention deletes old batches, which
        a counter read from the table would show as resets, and ``rate()`` as bursts of completions."""
        in_progress = GaugeMetricFamily(
            "batches_in_progress", "Batches not completed yet (completed_at unset; NaN: database unreachable)."
        )
        completed = GaugeMetricFamily(
            "batches_completed_recent",
            f"Batches whose last image ended in the last {WEBHOOK_WINDOW.seconds} s, completed or cancelled.",
            labels=["status"],
        )
        cancelled = Batch.cancelled_at.is_not(None)
        counts = {"completed": 0, "cancelled": 0}
        try:
            unfinished = select(func.count()).select_from(Batch).where(Batch.completed_at.is_(None))
            running = db.session.execute(unfinished).scalar()
            rows = db.session.execute(
                select(cancelled, func.count())
                .where(Batch.completed_at >= utcnow() - WEBHOOK_WINDOW)
                .group_by(cancelled)
            ).all()
            for was_cancelled, count in rows:
                counts["cancelled" if was_cancelled else "completed"] += count
        except Exception:
            db.session.rollback()
            running = float("nan")
            counts = dict.fromkeys(counts, float("nan"))
        in_progress.add_metric([], running)
        for status, count in counts.items():
            completed.add_metric([status], count)
        yield in_progress
        yield completed

    @staticmethod
    def _queue_depth(celery, queue: str) -> float:
        # A passive declare never creates the queue; RabbitMQ and kombu's
        # the embedded broker and kombu's memory transport all answer it with the message count.
        try:
            with celery.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
                return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
        except Exception as error:
            logger.warning("metrics: queue depth of %s unknown: %s", queue, error)
            return float("nan")


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    registry.register(ScrapeTimeCollector(current_app._get_current_object()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def init_metrics(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_count_request)
    app.register_blueprint(bp)
