"""Flower's queue view on RabbitMQ: started as the Procfile starts it, with no broker API option, it
reads the depths of the job queue, its dead-letter queue and the webhooks queue from the management API.

The Broker page's screenshot goes to ``ARTIFACTS_DIR`` (docs/img/flower-broker.png is a copy of it).
"""

import base64
import re

import pytest
import requests

from deploy.harness import app_for, deployment_env, running_web, start_flower, start_webhook_worker, start_worker
from tests.conftest import SAMPLES
from tests.support.api import post
from tests.support.browser import ARTIFACTS
from tests.support.polling import until

JOBS = 3
LOGIN = "ops:flower-test"
# RabbitMQ's management API refreshes queue figures every 5 s (collect_statistics_interval).
STATS_TIMEOUT = 60


@pytest.fixture(scope="module")
def paused_deployment(tmp_path_factory, mysql_url, new_queue):
    """Web, a worker told to stop consuming (Celery's cancel_consumer), the webhook worker and Flower,
    on a queue of their own; yields the proxy's URL, Flower's URL and the queue's name."""
    queue = new_queue()
    env = deployment_env(tmp_path_factory.mktemp("flower-instance"), mysql_url, queue)
    logs = tmp_path_factory.mktemp("flower-logs")
    worker = start_worker(env, logs, concurrency=1)
    webhooks = start_webhook_worker(env, logs)
    flower = None
    try:
        [hostname] = re.findall(r"(worker-\w+@\S+) ready\.", worker.output())
        celery = app_for(env).extensions["celery"]
        replies = celery.control.cancel_consumer(queue, destination=[hostname], reply=True, timeout=10)
        assert replies and all("ok" in reply[hostname] for reply in replies), replies
        flower, flower_url = start_flower(env, logs, LOGIN)
        with running_web(env, logs) as (url, _, _):
            yield url, flower_url, queue
    finally:
        if flower is not None:
            flower.stop()
        webhooks.stop()
        worker.stop()


def queue_depths(flower_url: str) -> dict[str, int | None]:
    response = requests.get(f"{flower_url}/api/queues/length", auth=tuple(LOGIN.split(":")), timeout=10)
    assert response.status_code == 200, response.text
    return {queue["name"]: queue.get("messages") for queue in response.json()["active_queues"]}


def expected_depths(queue: str) -> dict[str, int]:
    return {queue: JOBS, f"{queue}.dead": 0, f"{queue}.webhooks": 0}


@pytest.fixture(scope="module")
def queued(paused_deployment):
    """JOBS jobs posted through the proxy, which nothing consumes."""
    url, _, queue = paused_deployment
    for _ in range(JOBS):
        response = post(url, SAMPLES / "soccer_ball.jpg")
        assert response.status_code == 202, response.text
    return paused_deployment


def test_flower_reports_the_jobs_waiting_in_the_queue(queued):
    _, flower_url, queue = queued
    expected = expected_depths(queue)
    reported = {}

    def as_expected() -> bool:
        reported.update(queue_depths(flower_url))
        return {name: reported.get(name) for name in expected} == expected

    until(as_expected, lambda: f"Flower's depths {expected}; it reports {reported}", STATS_TIMEOUT, interval=1)


def test_flower_broker_page_lists_the_queues(queued, browser_context):
    _, flower_url, queue = queued
    page = browser_context.new_page()
    page.set_extra_http_headers({"Authorization": "Basic " + base64.b64encode(LOGIN.encode()).decode()})
    page.goto(f"{flower_url}/broker")
    for name in expected_depths(queue):
        page.get_by_role("cell", name=name, exact=True).wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "flower-broker.png", full_page=True)
    page.close()
