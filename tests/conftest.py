"""Fixtures for unit tests: an app on SQLite, an in-memory broker and a temp image store.

Nothing here needs a running service; integration fixtures live in tests/integration.
"""
import base64
import io
from pathlib import Path

import flask_migrate
import pytest
from PIL import Image

from webapp import create_app

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_IMAGES = SHARED / "images"
SAMPLES = SHARED_IMAGES / "samples"


UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1


@pytest.fixture
def make_app(tmp_path):
    """Apps sharing one SQLite database and image store; ``broker_url`` picks the broker."""
    def make(broker_url="memory://"):
        app = create_app({
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.sqlite'}",
            "IMAGE_STORE_URL": (tmp_path / "images").as_uri(),
            "REPUBLISH_PENDING_AFTER": 0,
            "CELERY": {"broker_url": broker_url, "broker_transport_options": {}},
        })
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


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def published(app):
    """Drains the in-memory broker queue and returns the messages published to it."""
    def drain():
        messages = []
        celery = app.extensions["celery"]
        with celery.connection_for_read() as connection:
            queue = connection.SimpleQueue(celery.conf.task_default_queue)
            while True:
                try:
                    message = queue.get(block=False)
                except queue.Empty:
                    return messages
                messages.append(message)
                message.ack()
    drain()
    return drain


def image_bytes(mode="RGB", size=(64, 48), fmt="JPEG", color=(200, 30, 30), **save_args) -> bytes:
    image = Image.new("RGB", size, color).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
