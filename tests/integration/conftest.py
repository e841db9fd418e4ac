"""The real deployment under test: Gunicorn and a Celery worker on MariaDB and RabbitMQ.

Each session gets its own database and queue (created here, dropped after), so
tests never touch what a running instance owns. With REQUIRE_SERVICES=1 (as in
CI) a missing service fails the run instead of skipping it.
"""

import os
import uuid

import pytest

from deploy.harness import (
    AMQP_URL,
    MYSQL_SERVER_URL,
    app_for,
    check_broker,
    create_database,
    delete_queues,
    deployment_env,
    drop_database,
    free_port,
    running_service,
)
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.support.servers import RABBITMQ_BIN, RabbitMQ
from tests.support.services import service_missing


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def mysql_url():
    try:
        url = create_database("imgsvc_test")
    except Exception as error:
        service_missing(f"MariaDB at {MYSQL_SERVER_URL}", error)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def new_queue():
    """Returns fresh queue names; the queues and exchanges are deleted after the session."""
    try:
        check_broker()
    except Exception as error:
        service_missing(f"RabbitMQ at {AMQP_URL}", error)
    names = []

    def new():
        names.append(f"inference-test-{uuid.uuid4().hex[:12]}")
        return names[-1]

    yield new
    delete_queues(names)


@pytest.fixture
def own_rabbitmq(tmp_path_factory):
    """A RabbitMQ node of the test's own, which it may kill and start again."""
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        service_missing("rabbitmq-server", FileNotFoundError(RABBITMQ_BIN / "rabbitmq-server"))
    broker = RabbitMQ(tmp_path_factory.mktemp("rabbitmq"))
    try:
        broker.start()
        yield broker
    finally:
        broker.remove()


@pytest.fixture(scope="session")
def service_env(tmp_path_factory, mysql_url, new_queue):
    return deployment_env(
        tmp_path_factory.mktemp("instance"),
        mysql_url,
        new_queue(),
        REPUBLISH_PENDING_AFTER="30",
        WORKER_METRICS_PORT=str(free_port()),
        WORKER_METRICS_BIND="127.0.0.1",
    )


@pytest.fixture(scope="session")
def service(service_env, tmp_path_factory):
    """The running deployment: (base URL, Gunicorn process, worker process)."""
    with running_service(service_env, tmp_path_factory.mktemp("logs")) as running:
        yield running


@pytest.fixture(scope="session")
def base_url(service):
    return service[0]


@pytest.fixture(scope="session")
def s3_service_env(service_env, new_queue, s3_endpoint):
    """The deployment with images in an S3 bucket, on its own queue."""
    return {
        **service_env,
        **{key: os.environ[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")},
        "CELERY_QUEUE": new_queue(),
        "IMAGE_STORE_URL": f"s3://images-{uuid.uuid4().hex[:8]}/uploads",
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_CREATE_BUCKET": "1",
    }


@pytest.fixture(scope="session")
def s3_base_url(s3_service_env, tmp_path_factory):
    with running_service(s3_service_env, tmp_path_factory.mktemp("s3-logs")) as (url, _, _):
        yield url


@pytest.fixture(scope="session")
def service_app(service_env):
    return app_for(service_env)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    """A headless system chromium (Playwright's own download cannot work offline)."""
    if not CHROMIUM.exists():
        service_missing(f"chromium at {CHROMIUM}", FileNotFoundError("apt-get install chromium"))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1000, "height": 760},
        )
        yield context
        context.close()
