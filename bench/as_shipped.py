"""The service as ``make run`` starts it (the Procfile under deploy.supervise), driven as users drive it.

The supervisor runs every Procfile line: the proxy (nginx), the web (Gunicorn), the waiter, the worker, the
webhooks worker, beat and Flower. Flower switches task events on in the worker, which then publishes
one per job, so it is part of what a job costs here. The client is ``client.batch.classify_one``:
each thread POSTs an image, waits for it with ``?wait=`` long polls (answered by the waiter when the
job ends), then takes the next image. ``poll_one`` posts the same way but polls without ``?wait=``,
every ``interval`` seconds or as Retry-After says, to measure what polling costs.
"""

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import requests

from client.batch import classify_one, post_image
from client.report import Outcome
from deploy.harness import READY_LINES, running_procfile

# What the worker logs once Flower has switched its task events on.
EVENTS_ON = "Events of group {task} enabled by remote"
_sessions = threading.local()


@contextmanager
def running_make_run(env: dict, instance: Path):
    """The Procfile under ``deploy.supervise`` (``deploy.harness.running_procfile``), with ``env``;
    yields the proxy's URL and the supervisor once the API answers, the worker is ready, beat has
    started and Flower has switched the worker's events on."""
    ready = {**READY_LINES, "worker": EVENTS_ON}
    with running_procfile({**env, "LOG_LEVEL": "INFO"}, instance, ready) as (url, supervisor, _):
        yield url, supervisor


def batch_client(
    url: str, files: list[Path], count: int, clients: int, interval: float | None = None, long_poll: bool = True
) -> dict:
    """``count`` images (``files`` cycled) from ``clients`` threads: through ``classify_one`` (``long_poll``),
    else through ``poll_one``."""
    paths = list(itertools.islice(itertools.cycle(files), count))
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        outcomes = list(
            pool.map(lambda path: classify_one(url, path, 120) if long_poll else poll_one(url, path, interval), paths)
        )
    seconds = time.perf_counter() - start
    latencies = [outcome.seconds for outcome in outcomes]
    return dict(
        images=count,
        seconds=seconds,
        rate=count / seconds,
        gets=sum(o.gets for o in outcomes),
        not_done=sum(1 for o in outcomes if o.status != "done"),
        p50=float(np.percentile(latencies, 50)),
        p99=float(np.percentile(latencies, 99)),
    )


def poll_one(base_url: str, path: Path, interval: float | None) -> Outcome:
    """POST as the batch client does, then GET (no ``?wait=``) every ``interval`` seconds, or after each
    answer's Retry-After when ``interval`` is None, until the job is no longer pending."""
    if not hasattr(_sessions, "session"):
        _sessions.session = requests.Session()
    session, outcome, started = _sessions.session, Outcome(name=path.name), time.perf_counter()
    response = post_image(session, base_url, path)
    outcome.post_status, outcome.post_body = response.status_code, response.json()
    while response.status_code == 202:
        response = session.get(f"{base_url}/predictions/{outcome.post_body['uuid']}", timeout=30)
        outcome.gets += 1
        outcome.get_status, outcome.get_body = response.status_code, response.json()
        if response.status_code == 202:
            time.sleep(float(response.headers["Retry-After"]) if interval is None else interval)
    outcome.seconds = time.perf_counter() - started
    return outcome
