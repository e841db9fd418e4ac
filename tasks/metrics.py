"""What a worker counts: its model calls (size, seconds) and the jobs it recorded, by final status.

The pool processes count; the worker's parent serves the figures (``tasks/metrics_endpoint.py``).
The metrics are made by ``make_worker_metrics`` once the worker has chosen its private
multiprocess folder, so that each pool process writes its own file there; until then
(``worker_state.metrics`` is None: the web, unit tests that run the task in-process) counting
does nothing.
"""

from collections.abc import Iterable

from prometheus_client import Counter, Histogram, values

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
BATCH_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RECORDED_STATUSES = ("done", "failed")


class WorkerMetrics:
    """The worker's counters and histograms; registered nowhere, the multiprocess files are the registry."""

    def __init__(self):
        self.batch_size = Histogram(
            "inference_batch_size", "Images per model call in the worker.", buckets=BATCH_SIZE_BUCKETS, registry=None
        )
        self.batch_seconds = Histogram(
            "inference_batch_seconds",
            "Seconds per model call in the worker.",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=None,
        )
        self.jobs = Counter(
            "worker_jobs_recorded", "Jobs this worker moved from pending to a final status.", ["status"], registry=None
        )
        for status in RECORDED_STATUSES:
            self.jobs.labels(status)  # both series exist from the start, at 0

    def observe_batch(self, size: int, seconds: float) -> None:
        """Record one model call on ``size`` images that took ``seconds``."""
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def count_recorded(self, statuses: Iterable[str]) -> None:
        """Count the jobs whose rows this worker actually wrote (not those another worker had already finished)."""
        for status in statuses:
            self.jobs.labels(status).inc()


def make_worker_metrics() -> WorkerMetrics:
    """The metrics, file-backed; ``PROMETHEUS_MULTIPROC_DIR`` must already name this worker's own folder."""
    # prometheus-client chooses between in-process and file-backed values when it is first
    # imported, which is before the worker has made its folder: ask it again now.
    values.ValueClass = values.get_value_class()
    return WorkerMetrics()
