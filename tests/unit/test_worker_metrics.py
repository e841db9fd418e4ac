"""A worker's own /metrics: pool processes write to the worker's private folder, the parent serves their sum."""

import multiprocessing
import os

import pytest
from prometheus_client import values

from tasks.metrics import make_worker_metrics
from tasks.metrics_endpoint import make_private_folder, serve
from tasks.state import WorkerState, worker_state
from tests.conftest import scrape

IDENTITY = {"runtime": "litert", "weights_sha256": "0123456789abcdef"}


def pool_process(statuses, batch_size):
    """What one pool process does for one batch: a model call, then the rows it wrote."""
    worker_state.metrics.observe_batch(batch_size, 0.03)
    worker_state.metrics.count_recorded(statuses)


@pytest.fixture
def worker_metrics(monkeypatch):
    """The worker's start-up in this process: its own folder, file-backed metrics; undone afterwards."""
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    saved = os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    folder = make_private_folder()
    monkeypatch.setattr(worker_state, "metrics", make_worker_metrics())
    yield folder
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR")
    if saved is not None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = saved


def test_endpoint_adds_up_the_pool_processes_of_this_worker_only(worker_metrics):
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == worker_metrics
    assert os.path.basename(worker_metrics).startswith("worker-metrics-")
    fork = multiprocessing.get_context("fork")  # as Celery's prefork pool does
    for statuses, size in ((["done", "done", "failed"], 3), (["done"], 1)):
        child = fork.Process(target=pool_process, args=(statuses, size))
        child.start()
        child.join(timeout=30)
        assert child.exitcode == 0
    server = serve(worker_metrics, 0, "127.0.0.1", lambda: IDENTITY)
    try:
        samples = scrape(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
    assert samples[("worker_jobs_recorded_total", (("status", "done"),))] == 3
    assert samples[("worker_jobs_recorded_total", (("status", "failed"),))] == 1
    assert samples[("inference_batch_size_count", ())] == 2
    assert samples[("inference_batch_size_sum", ())] == 4
    assert samples[("inference_batch_seconds_bucket", (("le", "0.05"),))] == 2
    assert samples[("worker_model_info", tuple(sorted(IDENTITY.items())))] == 1
    # Each pool process wrote its own files, all in this worker's folder.
    assert len([name for name in os.listdir(worker_metrics) if name.startswith("counter_")]) >= 2


def test_without_a_worker_start_nothing_is_counted():
    """The web and in-process task runs import the same modules but make no metrics (the classify
    task counts only through ``worker_state.metrics``), so they count nothing."""
    assert WorkerState().metrics is None
    assert worker_state.metrics is None
