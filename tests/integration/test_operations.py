"""Operating the service as ``make run`` starts it: the celery CLI of docs/operations.md, and crashes.

Every Procfile line runs under ``deploy.supervise`` on MariaDB and RabbitMQ, with a queue of its own.
Each remote-control command is sent as an operator sends it; after each, the service still takes an
image to ``done`` and the webhook worker is untouched. Then each process kind is killed with SIGKILL
in turn under light load: the supervisor starts it again, the others keep answering, and every
accepted job ends ``done``.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading

import pytest
import requests

from config.settings import PROJECT_ROOT
from deploy.harness import READY_LINES, deployment_env, logged, running_procfile
from deploy.supervise import read_procfile
from tests.conftest import SAMPLES
from tests.support.polling import until

IMAGE = (SAMPLES / "elephant.jpg").read_bytes()
JOB_TIMEOUT = 120
RESTART_TIMEOUT = 120
STARTED = re.compile(r"started (\w+) \(pid (\d+)\)")


@pytest.fixture(scope="module")
def procfile_service(tmp_path_factory, mysql_url, new_queue):
    instance = tmp_path_factory.mktemp("make-run")
    env = deployment_env(instance, mysql_url, new_queue(), REPUBLISH_PENDING_AFTER="30", LOG_LEVEL="INFO")
    with running_procfile(env, instance) as running:
        yield running


def pids(supervisor) -> dict[str, int]:
    """Each process's latest pid, from the supervisor's "started NAME (pid N)" lines."""
    return {name: int(pid) for name, pid in STARTED.findall(supervisor.output())}


def post(url: str) -> requests.Response:
    return requests.post(f"{url}/inference/image", files={"image": ("elephant.jpg", IMAGE)}, timeout=30)


def wait_done(url: str, job: str, timeout: float = JOB_TIMEOUT) -> dict:
    def done():
        try:
            response = requests.get(f"{url}/predictions/{job}", params={"wait": 10}, timeout=20)
        except requests.ConnectionError:  # the proxy itself is being restarted
            return None
        return response.json() if response.status_code == 200 else None

    return until(done, f"job {job} done", timeout, interval=0.2)


def classify(url: str) -> dict:
    response = post(url)
    assert response.status_code == 202, response.text
    return wait_done(url, response.json()["uuid"])


def celery(env, *arguments, app="tasks.worker:celery_app") -> str:
    """The celery CLI as docs/operations.md runs it (the deployment's settings in its environment)."""
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", app, *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout + result.stderr


def pool_processes(env) -> int:
    """The classification worker's pool processes, as `inspect stats` shows them."""
    [stats] = json.loads(celery(env, "inspect", "stats", "--json")).values()
    return len(stats["pool"]["processes"])


def test_control_commands_reach_the_classification_workers_only(procfile_service):
    url, supervisor, env = procfile_service
    webhooks = pids(supervisor)["webhooks"]

    def still_healthy():
        assert classify(url)["status"] == "done"
        assert pids(supervisor)["webhooks"] == webhooks, "the webhook worker was not restarted"
        os.kill(webhooks, 0)  # and is still running

    pong = celery(env, "inspect", "ping")
    assert "celery@" in pong and "webhooks@" not in pong, pong
    assert "webhooks@" in celery(env, "inspect", "ping", app="tasks.webhook_worker:celery_app")

    assert pool_processes(env) == 2
    assert "OK" in celery(env, "control", "pool_grow", "1")
    until(lambda: pool_processes(env) == 3, "a third pool process", RESTART_TIMEOUT)
    still_healthy()
    assert "OK" in celery(env, "control", "pool_shrink", "1")
    until(lambda: pool_processes(env) == 2, "back to two pool processes", RESTART_TIMEOUT)
    still_healthy()

    # A fixed pool (each process holds a model): autoscale says so and changes nothing.
    assert "Autoscale not enabled" in celery(env, "control", "autoscale", "3", "2")
    still_healthy()

    queue = env["CELERY_QUEUE"]
    assert "no longer consuming" in celery(env, "control", "cancel_consumer", queue)
    waiting = post(url).json()["uuid"]
    assert requests.get(f"{url}/predictions/{waiting}", timeout=10).json()["status"] == "pending"
    assert f"add consumer {queue}" in celery(env, "control", "add_consumer", queue)
    assert wait_done(url, waiting)["status"] == "done"
    still_healthy()

    worker = pids(supervisor)["worker"]
    celery(env, "control", "shutdown")  # a worker shutting down sends no reply: "No nodes replied"
    until(
        lambda: pids(supervisor)["worker"] != worker,
        "the worker restarted after `control shutdown`",
        RESTART_TIMEOUT,
    )
    still_healthy()
    assert "PreconditionFailed" not in supervisor.output()


class LightLoad(threading.Thread):
    """A POST every 0.3 s, each answer recorded against the process being killed at the time."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.phase = None
        self.accepted: list[str] = []
        self.refused: list[tuple[str, str]] = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.wait(0.3):
            phase = self.phase
            try:
                response = post(self.url)
            except requests.RequestException as error:
                self.refused.append((phase, type(error).__name__))
                continue
            if response.status_code == 202:
                self.accepted.append(response.json()["uuid"])
            else:
                self.refused.append((phase, str(response.status_code)))


# The processes whose own route is the POST: while they restart, a POST may fail.
ON_THE_POST_ROUTE = {"proxy", "web"}


def serving_again(name: str, url: str, env: dict, supervisor, ready_before: int) -> bool:
    """The restarted process does its job again: its readiness line is logged once more, or its port answers."""
    if name in READY_LINES:
        return logged(supervisor.output(), name, READY_LINES[name]) > ready_before
    address = f"http://127.0.0.1:{env['FLOWER_PORT']}/" if name == "flower" else f"{url}/health"
    try:
        return requests.get(address, timeout=5).status_code == (401 if name == "flower" else 200)
    except (requests.ConnectionError, requests.Timeout):
        return False


def crash_and_recover(name: str, url: str, supervisor, env: dict) -> None:
    """SIGKILL to the process; returns once the supervisor has logged it and it serves again."""
    before = pids(supervisor)[name]
    ready_before = logged(supervisor.output(), name, READY_LINES.get(name, "\0"))
    os.kill(before, signal.SIGKILL)
    until(lambda: pids(supervisor)[name] != before, f"{name} restarted", RESTART_TIMEOUT)
    assert f"{name} (pid {before}) was killed by SIGKILL; restarting in" in supervisor.output()
    until(
        lambda: serving_again(name, url, env, supervisor, ready_before),
        f"{name} serving again",
        RESTART_TIMEOUT,
    )


def test_each_process_killed_is_restarted_and_nothing_is_lost(procfile_service):
    url, supervisor, env = procfile_service
    load = LightLoad(url)
    load.start()
    try:
        for name in read_procfile(PROJECT_ROOT / "Procfile"):
            load.phase = name
            crash_and_recover(name, url, supervisor, env)
            load.phase = None
    finally:
        load.stopping.set()
        load.join()
    unexpected = [(phase, what) for phase, what in load.refused if phase not in ON_THE_POST_ROUTE]
    assert not unexpected, f"POSTs refused while another process restarted: {unexpected}"
    assert len(load.accepted) > 20
    for job in load.accepted:
        assert wait_done(url, job)["status"] == "done"


def test_ctrl_c_stops_every_process(procfile_service):
    _, supervisor, _ = procfile_service
    children = pids(supervisor)
    supervisor.popen.send_signal(signal.SIGINT)
    assert supervisor.popen.wait(timeout=60) == 0
    for name, pid in children.items():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert f"{name} did not stop" not in supervisor.output()
