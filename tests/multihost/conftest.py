"""The deployment spread over test hosts made of network namespaces (``deploy/netns.py``).

- ``services``: a private MariaDB, RabbitMQ and S3 server (moto), bound to that host's address;
- ``web``: the proxy (nginx) on the host's address in front of Gunicorn on a unix socket, as the
  Procfile runs them; reached at ``entry_url``;
- ``worker-a``, ``worker-b``: one Celery worker each, with its own instance folder, model cache and
  metrics endpoint (the same port on both: they are different hosts);
- the load client: this test process, in the root namespace, on the switch's own address.

Every URL names an interface address; nothing crosses hosts over 127.0.0.1. Needs root, iproute2,
rabbitmq-server and mariadb-server: without them the tests are skipped, or fail with REQUIRE_SERVICES=1.
"""

import os
import sys
import uuid
from pathlib import Path

import pytest

from deploy.harness import Process, create_database, deployment_env, launch_worker
from deploy.netns import NetnsUnavailable, Network, require_netns
from tests.support.multihost_deployment import S3_CREDENTIALS, Deployment, Services, Worker, start_web, worker_env
from tests.support.servers import RABBITMQ_BIN, MariaDB, RabbitMQ, wait_for_port
from tests.support.services import service_missing


def pytest_collection_modifyitems(items):
    for item in items:
        if "multihost" in str(item.path):
            item.add_marker(pytest.mark.multihost)


@pytest.fixture(scope="session")
def network():
    try:
        require_netns()
    except NetnsUnavailable as error:
        service_missing("Network namespaces", error)
    with Network() as net:
        yield net


@pytest.fixture(scope="session")
def services(network, tmp_path_factory):
    for program in (RABBITMQ_BIN / "rabbitmq-server", Path("/usr/sbin/mariadbd")):
        if not program.exists():
            service_missing(str(program), FileNotFoundError(program))
    host = network.add_host("services")
    mariadb = MariaDB(tmp_path_factory.mktemp("mariadb"), host.address, host.command)
    rabbitmq = RabbitMQ(tmp_path_factory.mktemp("rabbitmq"), host.address, host.command)
    s3_port = 9000
    s3_log = tmp_path_factory.mktemp("moto") / "moto.log"
    s3 = Process(
        host.command([sys.executable, "-m", "moto.server", "-H", host.address, "-p", str(s3_port)]),
        {**os.environ, **S3_CREDENTIALS},
        s3_log,
    )
    try:
        mariadb.start()
        rabbitmq.start()
        wait_for_port(s3_port, s3.popen, s3_log, address=host.address)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in S3_CREDENTIALS.items():  # for this process's own S3 clients
                patch.setenv(key, value)
            yield Services(host, mariadb, rabbitmq, f"http://{host.address}:{s3_port}")
    finally:
        s3.stop()
        rabbitmq.remove()
        mariadb.remove()


@pytest.fixture(scope="session")
def deployment(network, services, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("multihost-logs")
    database_url = create_database("imgsvc_multihost", services.mariadb.url)
    shared = {
        "CELERY_BROKER_URL": services.rabbitmq.url,
        "S3_ENDPOINT_URL": services.s3_url,
        "IMAGE_STORE_URL": f"s3://images-{uuid.uuid4().hex[:8]}/uploads",
        "S3_CREATE_BUCKET": "1",
        **S3_CREDENTIALS,
    }
    queue = f"inference-multihost-{uuid.uuid4().hex[:8]}"
    env = deployment_env(tmp_path_factory.mktemp("web-disk"), database_url, queue, **shared)  # migrates
    web_host = network.add_host("web")
    web = start_web(web_host, env, tmp_path_factory.mktemp("web"))
    deploy = Deployment(network, services, web_host, web.url, env, log_dir=log_dir)
    try:
        for name in ("worker-a", "worker-b"):
            host = network.add_host(name)
            settings = worker_env(env, host, tmp_path_factory.mktemp(f"{name}-disk"))
            deploy.workers[name] = Worker(
                host, launch_worker(settings, log_dir, name, concurrency=1, wrap=host.command), settings
            )
        for worker in deploy.workers.values():
            worker.process.wait_for(" ready.")
        yield deploy
    finally:
        for worker in deploy.workers.values():
            worker.host.restore()
            worker.process.stop()
        web.stop()
