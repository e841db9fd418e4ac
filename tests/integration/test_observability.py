"""``/metrics`` on the real deployment: the worker's batch figures reach the web process."""
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SAMPLES
from tests.integration.test_end_to_end import classify


def scrape(base_url: str) -> dict:
    response = requests.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def test_metrics_add_up_gunicorn_workers_celery_pool_database_and_queue(base_url, service_env):
    before = scrape(base_url)
    assert classify(base_url, SAMPLES / "soccer_ball.jpg")["prediction"] == "soccer_ball"
    after = scrape(base_url)

    batches = ("inference_batch_size_count", ())
    assert after[batches] >= before.get(batches, 0) + 1, "the worker's batches reach the web's /metrics"
    assert after[("inference_batch_seconds_sum", ())] > 0
    posted = ("http_requests_total", (("method", "POST"), ("route", "/inference/image"), ("status", "202")))
    assert after[posted] >= before.get(posted, 0) + 1
    assert after[("prediction_jobs", (("status", "done"),))] >= 1
    assert after[("queue_messages", (("queue", service_env["CELERY_QUEUE"]),))] >= 0
