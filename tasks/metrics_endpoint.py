"""Each worker serves its own Prometheus endpoint, so workers on any number of hosts are scraped one by one.

At start, before the pool forks, the worker's parent makes a multiprocess folder of its own
(a fresh temporary directory, removed at exit) where its pool processes write their figures,
and serves their sum on ``WORKER_METRICS_PORT`` (unset: no endpoint). Nothing is shared with the
web or with other workers, on this host or another.
"""

import atexit
import logging
import os
import shutil
import tempfile

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from config.settings import Settings
from tasks.metrics import make_worker_metrics
from tasks.state import WorkerState

logger = logging.getLogger(__name__)


def make_private_folder() -> str:
    """A fresh multiprocess folder for this worker, removed when its parent exits."""
    folder = tempfile.mkdtemp(prefix="worker-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # inherited by the pool processes
    owner = os.getpid()

    def remove_in_the_parent():  # forked pool processes inherit atexit handlers; only the parent removes it
        if os.getpid() == owner:
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove_in_the_parent)
    return folder


class ModelInfoCollector:
    """``worker_model_info{runtime, weights_sha256} 1``: which model this worker serves."""

    def __init__(self, identity):
        self.identity = identity  # read at each scrape: the hashes were computed once, at start

    def collect(self):
        identity = self.identity()
        info = GaugeMetricFamily("worker_model_info", "The model this worker serves.", labels=sorted(identity))
        info.add_metric([identity[key] for key in sorted(identity)], 1)
        yield info


def serve(folder: str, port: int, bind: str, model_identity):
    """Start the HTTP server in a daemon thread; returns the server (``server.server_port``, ``shutdown``)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    registry.register(ModelInfoCollector(model_identity))
    server, _thread = start_http_server(port, addr=bind, registry=registry)
    return server


def start_worker_metrics(state: WorkerState, settings: Settings) -> None:
    """Before the pool forks: the private folder, the file-backed metrics, and the endpoint if a port is set."""
    folder = make_private_folder()
    state.metrics = make_worker_metrics()
    port = settings.WORKER_METRICS_PORT
    if port is None:
        return
    serve(folder, port, settings.WORKER_METRICS_BIND, state.model_identity)
    logger.info("worker metrics on http://%s:%d/metrics", settings.WORKER_METRICS_BIND, port)
