"""RabbitMQ's own Prometheus endpoint (rabbitmq_prometheus, :15692) serves the series the dashboard and
alerts ask for, with the labels recorded in test_deploy_config, and counts this session's queues."""

import os

from tests.conftest import SAMPLES, scrape
from tests.support.api import classify
from tests.support.broker_series import RABBITMQ_SERIES
from tests.support.polling import until

ENDPOINT = os.environ.get("TEST_RABBITMQ_METRICS_URL", "http://127.0.0.1:15692")
# RabbitMQ gathers queue figures every collect_statistics_interval (5 s by default).
STATS_TIMEOUT = 60
# The families deploy/prometheus.yml's rabbitmq-queues job asks for.
PER_QUEUE = "/metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count"


def test_the_broker_serves_the_recorded_series_and_this_sessions_queues(base_url, service_env):
    assert classify(base_url, SAMPLES / "soccer_ball.jpg")["prediction"] == "soccer_ball"
    samples = {**scrape(f"{ENDPOINT}/metrics"), **scrape(ENDPOINT + PER_QUEUE)}
    served = {}
    for name, labels in samples:
        served.setdefault(name, set()).update(label for label, _ in labels)
    for name, labels in RABBITMQ_SERIES.items():
        assert name in served, f"RabbitMQ does not serve {name}"
        assert served[name] == labels, name
    queue = service_env["CELERY_QUEUE"]
    until(
        lambda: {queue, f"{queue}.dead"} <= queues_counted(scrape(ENDPOINT + PER_QUEUE)),
        f"RabbitMQ's figures for {queue} and its .dead queue",
        STATS_TIMEOUT,
        interval=1,
    )


def queues_counted(samples) -> set[str]:
    return {dict(labels)["queue"] for name, labels in samples if name == "rabbitmq_detailed_queue_messages"}
