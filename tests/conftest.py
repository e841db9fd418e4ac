"""Fixtures for unit tests: an app on SQLite, an in-memory broker and a temp image store.

Nothing here needs a running service; integration fixtures live in tests/integration.
"""

import base64
import io
import os
from pathlib import Path

import flask_migrate
import pytest
import requests
from PIL import Image

from config.settings import Settings, load_settings
from tests.support.polling import until
from webapp import create_app

# Tests say which services they use: neither the developer's shell nor .env may
# redirect them (Celery lets CELERY_BROKER_URL override any configuration).
os.environ["PYTHON_DOTENV_DISABLED"] = "1"
for _setting in (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_QUEUE",
    "IMAGE_STORE_URL",
    "INSTANCE_PATH",
    "S3_ENDPOINT_URL",
    "S3_CREATE_BUCKET",
    "API_KEYS",
    "RATE_LIMIT",
    "RATE_LIMIT_STORAGE_URL",
    "IDEMPOTENCY_TTL_SECONDS",
    "RETENTION_DAYS",
    "ORPHAN_GRACE_SECONDS",
):
    os.environ.pop(_setting, None)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_IMAGES = SHARED / "images"
SAMPLES = SHARED_IMAGES / "samples"


UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1


def settings_for(folder: Path, **changes) -> Settings:
    """The defaults (no environment, no .env) on a SQLite database and image store in ``folder``."""
    defaults = load_settings({"INSTANCE_PATH": str(folder / "instance")})
    test_defaults = {
        "DATABASE_URL": f"sqlite:///{folder / 'test.sqlite'}",
        "IMAGE_STORE_URL": (folder / "images").as_uri(),
        "REPUBLISH_PENDING_AFTER": 0,
    }
    return defaults.replace(**{**test_defaults, **changes})


@pytest.fixture
def make_app(tmp_path):
    """Apps sharing one SQLite database and image store; ``broker_url`` picks the broker, ``changes`` any setting."""

    def make(broker_url="memory://", **changes):
        app = create_app(settings_for(tmp_path, CELERY_BROKER_URL=broker_url, **changes))
        app.config["TESTING"] = True
        with app.app_context():
            flask_migrate.upgrade()
        return app

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def drain_queue(app, queue_name: str) -> list:
    """Takes (and acks) every message waiting in ``queue_name`` on the app's broker."""
    messages = []
    with app.extensions["celery"].connection_for_read() as connection:
        queue = connection.SimpleQueue(queue_name)
        while True:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                return messages
            messages.append(message)
            message.ack()


@pytest.fixture
def published(app):
    """Drains the in-memory broker's job queues (interactive and bulk lanes) and returns the messages
    published to them."""
    from jobs.broker import job_queue_names

    settings = app.extensions["settings"]
    queues = job_queue_names(settings.CELERY_QUEUE, settings.BULK_LANES)

    def drain():
        return [message for queue in queues for message in drain_queue(app, queue)]

    drain()
    return drain


def image_bytes(mode="RGB", size=(64, 48), fmt="JPEG", color=(200, 30, 30), **save_args) -> bytes:
    image = Image.new("RGB", size, color).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A real S3 API server on this machine (moto's server mode) on a spare port."""
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        if server.poll() is not None:
            raise RuntimeError("moto server did not start")
        try:
            requests.get(url, timeout=1)
            return True
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or slow to answer on a busy host
            return False

    until(answering, "the moto server answering", 60)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            patch.setenv(key, value)
        yield url
    server.terminate()
    server.wait(timeout=10)
    log.close()


def scrape(url: str) -> dict:
    """A Prometheus endpoint's samples, keyed by (name, sorted labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
