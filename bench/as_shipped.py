"""The service as ``make run`` starts it (honcho and the Procfile), driven as users drive it (the batch client).

honcho runs every Procfile line: the proxy (nginx), the web (Gunicorn), the worker, beat and Flower.
Flower switches task events on in the worker, which then publishes one per job, so it is part
of what a job costs here. The client is ``client.batch.classify_one``: each thread POSTs an image,
GETs it until it is no longer pending, then takes the next image.
"""
import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import requests

from client.batch import POLL_INTERVAL, classify_one
from deploy.harness import STARTUP_TIMEOUT, Process, free_port

# What the worker logs once Flower has switched its task events on.
EVENTS_ON = "Events of group {task} enabled by remote"


@contextmanager
def running_honcho(env: dict, instance: Path):
    """``honcho start`` on the Procfile in its own process group, with ``env`` (no .env file read);
    yields the proxy's URL and the honcho process once the API answers, the worker is ready, beat
    has started and Flower has switched the worker's events on."""
    port = free_port()
    empty_env_file = instance / "no.env"
    empty_env_file.touch()
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
           "FLOWER_PORT": str(free_port()), "FLOWER_BASIC_AUTH": f"bench:{secrets.token_urlsafe(12)}",
           "LOG_LEVEL": "INFO"}
    env.pop("WEB_BIND", None)
    honcho = Process([str(Path(sys.executable).parent / "honcho"), "--env", str(empty_env_file), "--no-colour",
                      "start", "--port", str(port)], env, instance / "honcho.log", own_group=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _ready(url, honcho.output()):
            if time.monotonic() > deadline or honcho.popen.poll() is not None:
                raise RuntimeError(f"make run's processes did not come up:\n{honcho.output()[-4000:]}")
            time.sleep(0.2)
        yield url, honcho
    finally:
        _stop(honcho)


def _ready(url: str, log: str) -> bool:
    if " ready." not in log or "beat: Starting" not in log or EVENTS_ON not in log:
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


def batch_client(url: str, files: list[Path], count: int, clients: int, poll_interval: float = POLL_INTERVAL) -> dict:
    """``count`` images (``files`` cycled) through ``classify_one`` from ``clients`` threads."""
    paths = list(itertools.islice(itertools.cycle(files), count))
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        outcomes = list(pool.map(lambda path: classify_one(url, path, 120, poll_interval), paths))
    seconds = time.perf_counter() - start
    latencies = [outcome.seconds for outcome in outcomes]
    return dict(images=count, seconds=seconds, rate=count / seconds, gets=sum(o.gets for o in outcomes),
                not_done=sum(1 for o in outcomes if o.status != "done"),
                p50=float(np.percentile(latencies, 50)), p99=float(np.percentile(latencies, 99)))
