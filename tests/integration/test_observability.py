"""``/metrics`` on the real deployment: the web's own figures, and the worker's on its own endpoint."""

from tests.conftest import SAMPLES, scrape
from tests.support.api import classify


def test_web_and_worker_each_serve_their_own_figures(base_url, service_env):
    worker_url = f"http://127.0.0.1:{service_env['WORKER_METRICS_PORT']}/metrics"
    before, worker_before = scrape(f"{base_url}/metrics"), scrape(worker_url)
    assert classify(base_url, SAMPLES / "soccer_ball.jpg")["prediction"] == "soccer_ball"
    after, worker_after = scrape(f"{base_url}/metrics"), scrape(worker_url)

    posted = ("http_requests_total", (("method", "POST"), ("route", "/inference/image"), ("status", "202")))
    assert after[posted] >= before.get(posted, 0) + 1
    assert after[("prediction_jobs", (("status", "done"),))] >= 1
    assert after[("queue_messages", (("queue", service_env["CELERY_QUEUE"]),))] >= 0
    assert not any(name.startswith("inference_batch") for name, _ in after), "worker figures stay on the worker"

    batches = ("inference_batch_size_count", ())
    assert worker_after[batches] >= worker_before[batches] + 1
    assert worker_after[("inference_batch_seconds_sum", ())] > 0
    done = ("worker_jobs_recorded_total", (("status", "done"),))
    assert worker_after[done] >= worker_before[done] + 1
    [(_, labels)] = [key for key in worker_after if key[0] == "worker_model_info"]
    assert dict(labels)["runtime"] == "litert" and len(dict(labels)["weights_sha256"]) == 16
