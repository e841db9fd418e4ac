"""Running the deployment locally: nginx, Gunicorn and Celery workers on MariaDB and RabbitMQ.

Shared by the integration tests and the benchmarks, which both need a real
deployment with a database and queue of their own.
"""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import requests
from honcho.environ import parse_procfile
from kombu import Connection, Exchange, Queue
from sqlalchemy import create_engine, text

from config.settings import PROJECT_ROOT, load_settings

MYSQL_SERVER_URL = os.environ.get("TEST_MYSQL_URL", "mysql+mysqldb://root@127.0.0.1:3306")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
STARTUP_TIMEOUT = 120


def create_database(prefix: str, server_url: str = MYSQL_SERVER_URL) -> str:
    """A fresh MariaDB database on ``server_url``; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    server = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    server.dispose()
    return f"{server_url}/{name}"


def drop_database(url: str) -> None:
    server_url, name = url.rsplit("/", 1)
    server = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    server.dispose()


def check_broker() -> None:
    with Connection(AMQP_URL, connect_timeout=3) as connection:
        connection.ensure_connection(max_retries=1)


def queue_length(name: str, amqp_url: str = AMQP_URL) -> int:
    """Messages ready in the queue (not those a worker holds unacked)."""
    with Connection(amqp_url) as connection:
        return (
            Queue(name, Exchange(name), routing_key=name)
            .bind(connection.channel())
            .queue_declare(passive=True)
            .message_count
        )


def delete_queues(names) -> None:
    """Every queue and exchange a deployment on each of these base queues may have created
    (``jobs.broker.entities``), for the default webhook retry schedule and the tests' (first retry 1 s)."""
    from jobs.broker import entities

    with Connection(AMQP_URL) as connection:
        channel = connection.channel()
        for name in names:
            queues, exchanges = set(), set()
            for first_retry in (1, 10):
                more_queues, more_exchanges = entities(name, first_retry, 3600)
                queues.update(more_queues)
                exchanges.update(more_exchanges)
            for queue in sorted(queues):
                Queue(queue).bind(channel).delete()
            for exchange in sorted(exchanges):
                Exchange(exchange).bind(channel).delete()


def deployment_env(instance: Path, database_url: str, queue: str, **settings) -> dict:
    """The environment of one deployment, with its database migrated."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": AMQP_URL,
        "CELERY_QUEUE": queue,
        "INSTANCE_PATH": str(instance),
        "IMAGE_STORE_URL": (instance / "images").as_uri(),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **settings,
    }
    # Gunicorn (gunicorn.conf.py) and each worker make a private metrics folder of their own.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def app_for(env: dict):
    """An in-process app configured like the deployment ``env``, for arranging rows directly."""
    from webapp import create_app

    return create_app(load_settings(env))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PROCFILE = PROJECT_ROOT / "Procfile"
_SHELL_PARAMETER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?])([^${}]*))?\}")


def procfile_command(name: str, env: dict, *extra: str) -> list[str]:
    """The Procfile's ``name`` process as an argument list, its ``${NAME:-default}`` expanded from ``env``
    as the shell would, run by this interpreter; ``extra`` options are appended (Celery and argparse
    take the last of a repeated option). The Procfile is the one list of processes and their options."""
    command = parse_procfile(PROCFILE.read_text()).processes[name]

    def expand(match: re.Match) -> str:
        variable, operator, word = match.groups()
        value = env.get(variable, "")
        if value or operator is None:
            return value
        if operator == "?":
            raise KeyError(f"the Procfile's {name} process needs {variable}: {word}")
        return word

    while _SHELL_PARAMETER.search(command):  # innermost first: ${A:-${B:-b}/x}
        command = _SHELL_PARAMETER.sub(expand, command)
    program, *args = shlex.split(command)
    runner = [sys.executable] if program == "python" else [sys.executable, "-m", program]
    return [*runner, *args, *extra]


class Process:
    """A child process whose output goes to a log file that failing tests can show."""

    def __init__(self, args, env, log: Path, own_group: bool = False):
        self.log = log
        self._file = log.open("ab")  # appends, like nginx's access log opened on the same file
        # In its own process group, the process and all its children can be killed at once.
        self.popen = subprocess.Popen(
            args, cwd=PROJECT_ROOT, env=env, stdout=self._file, stderr=subprocess.STDOUT, start_new_session=own_group
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text_in_log: str, timeout: float = STARTUP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text_in_log in self.output():
                return
            if self.popen.poll() is not None:
                raise RuntimeError(f"process exited early:\n{self.output()[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"{text_in_log!r} not seen:\n{self.output()[-3000:]}")

    def kill_group(self):
        """SIGKILL to the whole process group (needs ``own_group``): a crash, with no chance to clean up."""
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        self._file.close()

    def stop(self):
        if self.popen.poll() is not None:
            self._file.close()
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._file.close()


def same_host(args: list[str]) -> list[str]:
    return args


def launch_worker(
    env,
    log_dir: Path,
    name: str = "worker",
    concurrency: int = 2,
    own_group: bool = False,
    app: str = "tasks.worker:celery_app",
    wrap=same_host,
) -> Process:
    """A Celery worker process, not waited for (see ``start_worker``); ``wrap`` may run it on another
    host (``deploy.netns.Host.command``)."""
    args = procfile_command(
        "worker",
        {**env, "WORKER_CONCURRENCY": str(concurrency)},
        "--hostname",
        f"{name}-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip",
        "--without-mingle",
    )
    args[args.index("tasks.worker:celery_app")] = app
    return Process(wrap(args), env, log_dir / f"{name}.log", own_group)


def start_worker(env, log_dir: Path, name: str = "worker", **options) -> Process:
    """A Celery worker process (``launch_worker``'s options), once it is ready to consume."""
    worker = launch_worker(env, log_dir, name, **options)
    worker.wait_for(" ready.")
    return worker


def start_beat(env, log_dir: Path) -> Process:
    """Celery beat, which schedules the sweeper, as the Procfile runs it."""
    beat = Process(
        procfile_command("beat", env, "--schedule", str(log_dir / "celerybeat-schedule")), env, log_dir / "beat.log"
    )
    beat.wait_for("beat: Starting")
    return beat


@contextmanager
def running_web(env, log_dir: Path):
    """Gunicorn and the waiter behind the proxy (nginx), started as the Procfile starts them; yields the
    proxy's URL, the Gunicorn process and the proxy process once the API answers through the proxy.

    Gunicorn's socket and the proxy's files go in ``log_dir``, not the instance folder, so that two
    services of one instance (the S3 tests run a second) stay apart.
    """
    port = free_port()
    env = {**env, "WEB_BIND": env.get("WEB_BIND") or f"unix:{log_dir / 'web.sock'}"}
    web = Process(procfile_command("web", env), env, log_dir / "web.log")
    waiter, waiter_url = start_waiter(env, log_dir)
    proxy_env = {**env, "PORT": str(port), "INSTANCE_PATH": str(log_dir), "WAITER_PORT": waiter_url.rsplit(":", 1)[1]}
    proxy = Process(procfile_command("proxy", proxy_env), proxy_env, log_dir / "proxy.log")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _healthy(url):
            if time.monotonic() > deadline or web.popen.poll() is not None or proxy.popen.poll() is not None:
                raise RuntimeError(f"no healthy API behind {url}:\n{web.output()[-2000:]}\n{proxy.output()[-2000:]}")
            time.sleep(0.2)
        yield url, web, proxy
    finally:
        proxy.stop()
        waiter.stop()
        web.stop()


@contextmanager
def running_service(env, log_dir: Path, worker_concurrency: int = 2, worker_app: str = "tasks.worker:celery_app"):
    """The proxy, Gunicorn and one Celery worker with ``env``; yields the proxy's URL once healthy."""
    worker = launch_worker(env, log_dir, concurrency=worker_concurrency, app=worker_app)
    try:
        with running_web(env, log_dir) as (url, web, _):
            worker.wait_for(" ready.")
            yield url, web, worker
    finally:
        worker.stop()


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # not listening yet, or Gunicorn still booting
        return False


def start_waiter(env, log_dir: Path) -> tuple[Process, str]:
    """The waiter (``webapp.waiter``) on a spare port, once it answers; returns it and its base URL."""
    port = free_port()
    waiter_env = {**env, "WAITER_PORT": str(port)}
    waiter = Process(procfile_command("waiter", waiter_env), waiter_env, log_dir / "waiter.log")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            requests.get(f"{url}/predictions/{uuid.uuid4()}", timeout=2)
            return waiter, url
        except requests.ConnectionError:
            if time.monotonic() > deadline or waiter.popen.poll() is not None:
                raise RuntimeError(f"waiter did not start:\n{waiter.output()[-3000:]}") from None
            time.sleep(0.1)


def start_webhook_worker(env, log_dir: Path) -> Process:
    """The webhook worker as the Procfile runs it: a thread pool on the webhooks queue only."""
    args = procfile_command(
        "webhooks", env, "--hostname", f"webhooks-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle"
    )
    worker = Process(args, env, log_dir / "webhooks.log")
    worker.wait_for(" ready.")
    return worker


# What each process of the Procfile logs once it serves.
READY_LINES = {
    "worker": " ready.",
    "webhooks": " ready.",
    "beat": "beat: Starting",
    "waiter": "listening for completion events",
}


def logged(supervisor_log: str, name: str, text: str) -> int:
    """How many of process ``name``'s lines in the supervisor's log contain ``text``."""
    prefix = re.compile(rf"^\S+ {re.escape(name)} *\| ")
    return sum(1 for line in supervisor_log.splitlines() if prefix.match(line) and text in line)


@contextmanager
def running_procfile(env, log_dir: Path, ready=READY_LINES):
    """Every Procfile line under ``deploy.supervise``, as ``make run`` starts them, on ports of their own.

    Yields the proxy's URL, the supervisor's process (its log holds every process's lines) and the
    environment given to it, once the API answers and each process named in ``ready`` has logged
    its line there.
    """
    port = free_port()
    env = {
        **env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PORT": str(port),
        "FLOWER_PORT": str(free_port()),
        "WAITER_PORT": str(free_port()),
        "WORKER_METRICS_PORT": str(free_port()),
        "FLOWER_BASIC_AUTH": f"ops:{uuid.uuid4().hex}",
    }
    env.pop("WEB_BIND", None)
    supervisor = Process([sys.executable, "-m", "deploy.supervise"], env, log_dir / "supervise.log", own_group=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not all(logged(supervisor.output(), name, text) for name, text in ready.items()) or not _healthy(url):
            if time.monotonic() > deadline or supervisor.popen.poll() is not None:
                raise RuntimeError(f"make run's processes did not come up:\n{supervisor.output()[-4000:]}")
            time.sleep(0.2)
        yield url, supervisor, env
    finally:
        stop_supervisor(supervisor)


def stop_supervisor(supervisor: Process) -> None:
    """SIGTERM to the supervisor, which stops every process it runs; its group is killed only if it hangs."""
    if supervisor.popen.poll() is None:
        supervisor.popen.send_signal(signal.SIGTERM)
        try:
            supervisor.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            supervisor.kill_group()
            return
    supervisor.stop()
