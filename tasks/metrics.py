"""Worker-side metrics: how many images each model call takes and how long it lasts.

They reach the API's ``/metrics`` through prometheus-client's multiprocess mode:
with ``PROMETHEUS_MULTIPROC_DIR`` set, every process (each pool child, each
Gunicorn worker) writes its figures to files in that directory and the web
process adds them up at scrape time. Without it they stay in this process.
"""
from prometheus_client import Histogram

BATCH_SIZE = Histogram(
    "inference_batch_size", "Images per model call in the worker.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
BATCH_SECONDS = Histogram(
    "inference_batch_seconds", "Seconds per model call in the worker.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def observe_batch(size: int, seconds: float) -> None:
    """Record one model call on ``size`` images that took ``seconds``."""
    BATCH_SIZE.observe(size)
    BATCH_SECONDS.observe(seconds)
