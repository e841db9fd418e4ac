"""The service as ``make run`` starts it (honcho and the Procfile), driven as users drive it (the batch client).

honcho runs every Procfile line: the proxy (nginx), the web (Gunicorn), the waiter, the worker, the
webhooks worker, beat and Flower. Flower switches task events on in the worker, which then publishes
one per job, so it is part of what a job costs here. The client is ``client.batch.classify_one``:
each thread POSTs an image, waits for it with ``?wait=`` long polls (answered by the waiter when the
job ends), then takes the next image. ``poll_one`` posts the same way but polls without ``?wait=``,
every ``interval`` seconds or as Retry-After says, to measure what polling costs.
"""

import itertools
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import requests

from client.batch import classify_one, post_image
from client.report import Outcome
from deploy.harness import STARTUP_TIMEOUT, Process, free_port
from jobs.broker import is_rabbitmq

# What the worker logs once Flower has switched its task events on, and the waiter once it hears of ended jobs.
EVENTS_ON = "Events of group {task} enabled by remote"
WAITER_LISTENING = "listening for completion events"
WAITER_STARTED = "waiter listening on"
_sessions = threading.local()


@contextmanager
def running_honcho(env: dict, instance: Path):
    """``honcho start`` on the Procfile in its own process group, with ``env`` (no .env file read);
    yields the proxy's URL and the honcho process once the API answers, the worker is ready, beat
    has started and Flower has switched the worker's events on."""
    port = free_port()
    empty_env_file = instance / "no.env"
    empty_env_file.touch()
    env = {
        **env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "FLOWER_PORT": str(free_port()),
        "WAITER_PORT": str(free_port()),
        "FLOWER_BASIC_AUTH": f"bench:{secrets.token_urlsafe(12)}",
        "LOG_LEVEL": "INFO",
    }
    env.pop("WEB_BIND", None)
    honcho = Process(
        [
            str(Path(sys.executable).parent / "honcho"),
            "--env",
            str(empty_env_file),
            "--no-colour",
            "start",
            "--port",
            str(port),
        ],
        env,
        instance / "honcho.log",
        own_group=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _ready(url, honcho.output(), env.get("CELERY_BROKER_URL", "")):
            if time.monotonic() > deadline or honcho.popen.poll() is not None:
                raise RuntimeError(f"make run's processes did not come up:\n{honcho.output()[-4000:]}")
            time.sleep(0.2)
        yield url, honcho
    finally:
        _stop(honcho)


def _ready(url: str, log: str, broker_url: str) -> bool:
    # Without a fanout (the embedded broker) the waiter polls the database instead of listening.
    waiter = WAITER_LISTENING if is_rabbitmq(broker_url) else WAITER_STARTED
    if any(line not in log for line in (" ready.", "beat: Starting", EVENTS_ON, waiter)):
        return False
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):
        return False


def _stop(honcho: Process) -> None:
    """SIGTERM to honcho, which stops every Procfile process (SIGKILL after its own 5 s); the group
    is killed only if honcho itself hangs."""
    if honcho.popen.poll() is None:
        honcho.popen.send_signal(signal.SIGTERM)
        try:
            honcho.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            honcho.kill_group()
            return
    honcho.stop()


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
