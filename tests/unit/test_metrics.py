"""``/metrics`` on SQLite and the in-memory broker: requests, latency, jobs, queue depth."""

import math

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import UNREACHABLE_BROKER, b64, image_bytes


def scrape(client) -> dict:
    """{(sample name, sorted labels): value} from one GET /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def post(client):
    return client.post("/inference/image", data=f'{{"data": "{b64(image_bytes())}"}}')


def requests_counted(samples, route, status, method="POST"):
    return samples.get(("http_requests_total", (("method", method), ("route", route), ("status", status))), 0)


def test_requests_are_counted_by_route_rule_and_status(client, published):
    before = scrape(client)
    post(client)
    client.get("/predictions/not-a-uuid")
    samples = scrape(client)
    assert (
        requests_counted(samples, "/inference/image", "202") == requests_counted(before, "/inference/image", "202") + 1
    )
    # One series for every id, not one per path.
    assert requests_counted(samples, "/predictions/<prediction_uuid>", "404", "GET") >= 1
    latency = ("http_request_duration_seconds_count", (("method", "POST"), ("route", "/inference/image")))
    assert samples[latency] == before.get(latency, 0) + 1


def test_jobs_by_status_and_queue_depth_are_read_at_scrape_time(client, published):
    assert scrape(client)[("prediction_jobs", (("status", "pending"),))] == 0
    post(client)
    post(client)
    samples = scrape(client)
    assert samples[("prediction_jobs", (("status", "pending"),))] == 2
    assert samples[("prediction_jobs", (("status", "done"),))] == 0
    assert samples[("queue_messages", (("queue", "inference"),))] == 2
    published()
    assert scrape(client)[("queue_messages", (("queue", "inference"),))] == 0


def test_queue_depth_is_unknown_while_the_broker_is_unreachable(make_app):
    samples = scrape(make_app(UNREACHABLE_BROKER).test_client())
    assert math.isnan(samples[("queue_messages", (("queue", "inference"),))])
    assert samples[("prediction_jobs", (("status", "pending"),))] == 0


def test_worker_figures_are_not_in_the_web_metrics(client):
    """Workers serve their own endpoint (tasks/metrics_endpoint.py); the web no longer adds up their files."""
    names = {name for name, _ in scrape(client)}
    assert not any(name.startswith(("inference_batch", "worker_")) for name in names)


def test_fifty_invented_methods_add_at_most_one_series(client):
    def series(samples, metric):
        return {
            tuple(label for label in labels if label[0] != "le") for name, labels in samples if name.startswith(metric)
        }

    before = scrape(client)
    for number in range(50):
        assert client.open("/health", method=f"INVENTED{number}").status_code == 405
    after = scrape(client)
    for metric in ("http_requests_total", "http_request_duration_seconds"):
        new = series(after, metric) - series(before, metric)
        assert len(new) <= 1, new
        assert all(dict(labels)["method"] == "other" and dict(labels)["route"] == "unmatched" for labels in new)


def test_the_oldest_pending_job_and_the_last_heartbeat_have_an_age(app, client):
    from jobs.workers import heartbeat

    samples = scrape(client)
    assert samples[("prediction_oldest_pending_seconds", ())] == 0
    assert samples[("last_worker_heartbeat_age_seconds", ())] == math.inf
    post(client)
    with app.app_context():
        heartbeat("worker@test", {})
    samples = scrape(client)
    assert 0 < samples[("prediction_oldest_pending_seconds", ())] < 60
    assert 0 <= samples[("last_worker_heartbeat_age_seconds", ())] < 60


def test_webhook_attempts_of_the_last_minutes_are_counted_by_outcome(app, client):
    from datetime import timedelta

    from jobs.database import db
    from jobs.records import utcnow
    from jobs.webhook_schedule import WebhookDelivery

    job = post(client).get_json()["uuid"]
    with app.app_context():
        for status_code, minutes_ago in ((200, 1), (500, 1), (None, 2), (500, 30)):
            attempted_at = utcnow() - timedelta(minutes=minutes_ago)
            db.session.add(
                WebhookDelivery(uuid=job, attempt=1, attempted_at=attempted_at, status_code=status_code, duration=0.1)
            )
        db.session.commit()
    samples = scrape(client)
    assert samples[("webhook_attempts_recent", (("outcome", "delivered"),))] == 1
    assert samples[("webhook_attempts_recent", (("outcome", "failed"),))] == 2


def test_the_content_type_names_its_charset_once(client):
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.startswith("text/plain; version=") and content_type.count("charset") == 1, content_type


def test_batches_in_progress_and_those_completed_lately_are_counted(app, client):
    import io
    from datetime import timedelta

    from sqlalchemy import update

    from jobs.batches import Batch
    from jobs.database import db
    from jobs.records import utcnow

    def post_batch(*images: bytes) -> str:
        files = [(io.BytesIO(data), f"{index}.jpg") for index, data in enumerate(images)]
        response = client.post("/batches", data={"image": files})
        assert response.status_code == 202, response.json
        return response.json["id"]

    def batch_figures():
        samples = scrape(client)
        return (
            samples[("batches_in_progress", ())],
            samples[("batches_completed_recent", (("status", "completed"),))],
            samples[("batches_completed_recent", (("status", "cancelled"),))],
        )

    assert batch_figures() == (0, 0, 0)
    post_batch(image_bytes(), image_bytes())
    cancelled = post_batch(image_bytes())
    post_batch(b"junk")  # every image refused: completed as it is created
    old = post_batch(b"junk")
    assert batch_figures() == (2, 2, 0)
    assert client.delete(f"/batches/{cancelled}").status_code == 200
    with app.app_context():  # an end older than the window is no longer counted
        db.session.execute(update(Batch).where(Batch.id == old).values(completed_at=utcnow() - timedelta(minutes=30)))
        db.session.commit()
    assert batch_figures() == (1, 1, 1)


def test_batch_figures_are_unknown_when_the_database_cannot_answer(app, client):
    from jobs.batches import Batch
    from jobs.database import db

    with app.app_context():  # a real failure of the query, as a lost connection or a missing table gives
        Batch.__table__.drop(db.engine)
    samples = scrape(client)
    assert math.isnan(samples[("batches_in_progress", ())])
    assert math.isnan(samples[("batches_completed_recent", (("status", "completed"),))])
    assert samples[("prediction_jobs", (("status", "pending"),))] == 0  # the other figures still answer
