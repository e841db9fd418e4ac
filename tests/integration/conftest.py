"""The real deployment under test: Gunicorn and a Celery worker on MariaDB and RabbitMQ.

Each session gets its own database and queue (created here, dropped after), so
tests never touch what a running instance owns. With REQUIRE_SERVICES=1 (as in
CI) a missing service fails the run instead of skipping it.
"""
import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from kombu import Connection, Exchange, Queue
from sqlalchemy import create_engine, text

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MYSQL_SERVER_URL = os.environ.get("TEST_MYSQL_URL", "mysql+mysqldb://root@127.0.0.1:3306")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
SERVICES_REQUIRED = os.environ.get("REQUIRE_SERVICES") == "1"
STARTUP_TIMEOUT = 120


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


def service_missing(what: str, error: Exception):
    message = f"{what} is not reachable ({error}); start it or unset REQUIRE_SERVICES to skip"
    if SERVICES_REQUIRED:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def mysql_url():
    name = f"imgsvc_test_{uuid.uuid4().hex[:12]}"
    server = create_engine(MYSQL_SERVER_URL, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    except Exception as error:
        service_missing(f"MariaDB at {MYSQL_SERVER_URL}", error)
    yield f"{MYSQL_SERVER_URL}/{name}"
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    server.dispose()


@pytest.fixture(scope="session")
def new_queue():
    """Returns fresh queue names; the queues and exchanges are deleted after the session."""
    try:
        with Connection(AMQP_URL, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:
        service_missing(f"RabbitMQ at {AMQP_URL}", error)
    names = []

    def new():
        names.append(f"inference-test-{uuid.uuid4().hex[:12]}")
        return names[-1]

    yield new
    with Connection(AMQP_URL) as connection:
        channel = connection.channel()
        for name in names:
            Queue(name, Exchange(name), routing_key=name).bind(channel).delete()
            Exchange(name).bind(channel).delete()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def service_env(tmp_path_factory, mysql_url, new_queue):
    instance = tmp_path_factory.mktemp("instance")
    env = {
        **os.environ,
        "DATABASE_URL": mysql_url,
        "CELERY_BROKER_URL": AMQP_URL,
        "CELERY_QUEUE": new_queue(),
        "INSTANCE_PATH": str(instance),
        "IMAGE_STORE_URL": (instance / "images").as_uri(),
        "REPUBLISH_PENDING_AFTER": "30",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # Gunicorn and the worker's pool add their metrics up in here, as under `make run`.
        "PROMETHEUS_MULTIPROC_DIR": str(instance / "metrics"),
    }
    (instance / "metrics").mkdir()
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                   cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    return env


class Process:
    """A child process whose output goes to a log file that failing tests can show."""

    def __init__(self, args, env, log: Path):
        self.log = log
        self._file = log.open("wb")
        self.popen = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=self._file, stderr=subprocess.STDOUT)

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

    def stop(self):
        self.popen.terminate()
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._file.close()


def start_worker(env, log_dir: Path, name: str = "worker", concurrency: int = 2) -> Process:
    worker = Process(
        [sys.executable, "-m", "celery", "-A", "wsgi:celery_app", "worker", "--loglevel", "INFO",
         "--concurrency", str(concurrency), "--hostname", f"{name}-{uuid.uuid4().hex[:6]}@%h",
         "--without-gossip", "--without-mingle"],
        env, log_dir / f"{name}.log",
    )
    worker.wait_for(" ready.")
    return worker


@contextmanager
def running_service(env, log_dir: Path):
    """Gunicorn and one Celery worker with ``env``; yields the API's base URL once healthy."""
    port = free_port()
    web = Process([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", "wsgi:app"],
                  env, log_dir / "web.log")
    worker = start_worker(env, log_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _healthy(url):
            if time.monotonic() > deadline:
                raise TimeoutError(web.output()[-3000:])
            time.sleep(0.2)
        yield url
    finally:
        web.stop()
        worker.stop()


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.fixture(scope="session")
def base_url(service_env, tmp_path_factory):
    with running_service(service_env, tmp_path_factory.mktemp("logs")) as url:
        yield url


@pytest.fixture(scope="session")
def s3_service_env(service_env, new_queue, s3_endpoint):
    """The deployment with images in an S3 bucket, on its own queue."""
    return {**service_env, **{key: os.environ[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                                "AWS_DEFAULT_REGION")},
            "CELERY_QUEUE": new_queue(), "IMAGE_STORE_URL": f"s3://images-{uuid.uuid4().hex[:8]}/uploads",
            "S3_ENDPOINT_URL": s3_endpoint, "S3_CREATE_BUCKET": "1"}


@pytest.fixture(scope="session")
def s3_base_url(s3_service_env, tmp_path_factory):
    with running_service(s3_service_env, tmp_path_factory.mktemp("s3-logs")) as url:
        yield url


SERVICE_SETTINGS = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_QUEUE", "INSTANCE_PATH", "IMAGE_STORE_URL",
                    "S3_ENDPOINT_URL", "S3_CREATE_BUCKET")


def app_for(env: dict):
    """An in-process app configured like the deployment ``env``, for arranging rows directly."""
    from webapp import create_app

    with pytest.MonkeyPatch.context() as patch:
        for key in SERVICE_SETTINGS:
            patch.setenv(key, env.get(key, ""))
        return create_app()


@pytest.fixture(scope="session")
def service_app(service_env):
    return app_for(service_env)
