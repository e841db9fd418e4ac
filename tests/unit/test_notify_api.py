"""``wait`` and ``callback_url`` through the Flask app, and what an ended job sets off (memory broker, SQLite)."""

import json
import time
import uuid

import pytest

from jobs.broker import DELIVER_TASK, webhook_queue
from jobs.database import db
from jobs.endings import announce_ended
from jobs.records import Prediction, done_outcome, failed_outcome, record_outcomes
from jobs.signing import SIGNATURE_HEADER, verify
from jobs.webhook_schedule import WebhookDelivery
from tests.conftest import b64, drain_queue, image_bytes
from tests.support.webhook_receiver import Receiver
from webapp.predictions.notify import parse_wait

SECRET = "unit-secret"


def post(client, headers=None, **fields):
    return client.post(
        "/inference/image",
        data=json.dumps({"name": "x.jpg", "data": b64(image_bytes()), **fields}),
        content_type="application/json",
        headers=headers or {},
    )


@pytest.mark.parametrize("raw, seconds", [("1", 1), ("30", 30), ("0.5", 0.5), ("12.25", 12.25)])
def test_wait_takes_seconds_above_zero_up_to_thirty(raw, seconds):
    assert parse_wait(raw) == seconds
    assert parse_wait(None) is None


@pytest.mark.parametrize("raw", ["0", "0.0", "31", "30.5", "-1", "", "abc", "1e1", "nan", "inf", "5s", "100", " 5"])
def test_other_wait_values_are_a_422_problem(client, raw):
    prediction_uuid = post(client).get_json()["uuid"]
    response = client.get(f"/predictions/{prediction_uuid}", query_string={"wait": raw})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert "'wait' must be a number of seconds" in response.get_json()["detail"]


def test_without_a_waiter_the_web_answers_wait_at_once(client):
    prediction_uuid = post(client).get_json()["uuid"]
    started = time.monotonic()
    response = client.get(f"/predictions/{prediction_uuid}?wait=30")
    assert time.monotonic() - started < 2
    assert response.status_code == 202 and response.headers["Retry-After"] == "1"


def test_with_waiter_url_the_web_redirects_a_pending_wait_there_and_answers_an_ended_job_itself(make_app):
    app = make_app(WAITER_URL="http://waiter.example:5002")
    client = app.test_client()
    prediction_uuid = post(client).get_json()["uuid"]
    response = client.get(f"/predictions/{prediction_uuid}?wait=10")
    assert response.status_code == 307
    assert response.headers["Location"] == f"http://waiter.example:5002/predictions/{prediction_uuid}?wait=10"
    with app.app_context():
        record_outcomes({prediction_uuid: failed_outcome("gone")})
    assert client.get(f"/predictions/{prediction_uuid}?wait=10").status_code == 200


def test_callback_url_is_refused_while_the_service_has_no_secret(client):
    response = post(client, callback_url="https://8.8.8.8/hook")
    assert response.status_code == 422
    assert "no WEBHOOK_SECRET" in response.get_json()["detail"]


def test_callback_url_from_the_body_or_the_header_is_stored_with_the_job(make_app):
    app = make_app(WEBHOOK_SECRET=SECRET)
    client = app.test_client()
    from_body = post(client, callback_url="https://8.8.8.8/hook").get_json()["uuid"]
    from_header = post(client, headers={"X-Callback-URL": "http://1.1.1.1:8080/h?x=1"}).get_json()["uuid"]
    plain = post(client).get_json()["uuid"]
    with app.app_context():
        assert db.session.get(Prediction, from_body).callback_url == "https://8.8.8.8/hook"
        assert db.session.get(Prediction, from_header).callback_url == "http://1.1.1.1:8080/h?x=1"
        assert db.session.get(Prediction, plain).callback_url is None


@pytest.mark.parametrize(
    "fields, headers, detail",
    [
        ({"callback_url": "http://127.0.0.1/h"}, {}, "not a public address"),
        ({"callback_url": "http://localhost/h"}, {}, "not a public address"),
        ({}, {"X-Callback-URL": "http://[::1]/h"}, "not a public address"),
        ({"callback_url": "ftp://8.8.8.8/h"}, {}, "http or https"),
        ({"callback_url": 42}, {}, "must be a string"),
        ({"callback_url": "http://8.8.8.8/a\r\nX-Injected: 1"}, {}, "control character"),
        ({"callback_url": "http://8.8.8.8/a b"}, {}, "space or control character"),
        ({"callback_url": "http://8.8.8.8:0/h"}, {}, "port 0"),
        ({"callback_url": "http://8.8.8.8:99999/h"}, {}, "host or port cannot be read"),
        ({"callback_url": "http://exa..mple.com/h"}, {}, "not a valid host name"),
        ({"callback_url": "http://\U0001f600.example/h"}, {}, "not a valid internationalized name"),
        ({"callback_url": "http://169.254.169.254/latest/meta-data"}, {}, "link-local"),
        ({"callback_url": "https://8.8.8.8/a"}, {"X-Callback-URL": "https://8.8.8.8/b"}, "Give the callback URL once"),
    ],
)
def test_unusable_callbacks_are_refused_and_nothing_is_queued(make_app, published, fields, headers, detail):
    app = make_app(WEBHOOK_SECRET=SECRET)
    response = post(app.test_client(), headers=headers, **fields)
    assert response.status_code == 422 and detail in response.get_json()["detail"]
    with app.app_context():
        assert db.session.query(Prediction).count() == 0
    assert published() == []


def test_loopback_callbacks_are_accepted_with_webhook_allow_private(make_app):
    app = make_app(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True)
    assert post(app.test_client(), callback_url="http://localhost:9/hook").status_code == 202


def test_an_ended_job_with_a_callback_queues_one_delivery_on_the_webhooks_queue(make_app):
    app = make_app(WEBHOOK_SECRET=SECRET)
    client = app.test_client()
    with_callback = post(client, callback_url="https://8.8.8.8/hook").get_json()["uuid"]
    without = post(client).get_json()["uuid"]
    with app.app_context():
        record_outcomes({with_callback: failed_outcome("x"), without: failed_outcome("x")})
        announce_ended({with_callback: "failed", without: "failed"})
    [message] = drain_queue(app, webhook_queue("inference").name)
    assert message.headers["task"] == DELIVER_TASK
    assert message.payload[0] == [with_callback, 1]


@pytest.mark.parametrize("status", [200, 503])
def test_the_delivery_task_posts_signed_records_the_attempt_and_reschedules_a_failure(make_app, status):
    from tasks.webhook_delivery import deliver_webhook

    app = make_app(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_FIRST_RETRY=7)
    receiver = Receiver([status])
    try:
        prediction_uuid = post(app.test_client(), callback_url=receiver.url).get_json()["uuid"]
        with app.app_context():
            record_outcomes({prediction_uuid: done_outcome("dogsled", 0.9, [{"label": "dogsled", "score": 0.9}])})
            outcome = deliver_webhook.run(prediction_uuid, 1)
            [attempt] = db.session.query(WebhookDelivery).all()
    finally:
        receiver.close()
    [delivery] = receiver.received
    headers, body = delivery["headers"], delivery["body"]
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert json.loads(body)["prediction"] == "dogsled"
    assert (attempt.uuid, attempt.attempt, attempt.status_code) == (prediction_uuid, 1, status)
    retries = drain_queue(app, webhook_queue("inference").name)
    if status == 200:
        assert outcome == "delivered: 200" and retries == []
    else:
        # The embedded and memory brokers have no dead-lettering: the retry is a countdown.
        [retry] = retries
        assert outcome == "attempt 1 failed (503); next in 7s"
        assert retry.payload[0] == [prediction_uuid, 2] and retry.headers["eta"]


def test_the_delivery_task_gives_up_once_the_retry_budget_is_spent(make_app):
    from tasks.webhook_delivery import deliver_webhook

    app = make_app(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_SECONDS=5, WEBHOOK_FIRST_RETRY=10)
    prediction_uuid = post(app.test_client(), callback_url="http://127.0.0.1:1/closed").get_json()["uuid"]
    with app.app_context():
        record_outcomes({prediction_uuid: failed_outcome("x")})
        assert deliver_webhook.run(prediction_uuid, 1) == "given up"
        [attempt] = db.session.query(WebhookDelivery).all()
    assert attempt.status_code is None and "ConnectionRefusedError" in attempt.error
    assert drain_queue(app, webhook_queue("inference").name) == []


def test_a_job_the_sweeper_gives_up_on_gets_its_webhook_too(make_app):
    import tasks.sweeper  # noqa: F401  registers the worker's sweeper with every Celery app

    app = make_app(WEBHOOK_SECRET=SECRET, MAX_DELIVERIES=0)
    prediction_uuid = post(app.test_client(), callback_url="https://8.8.8.8/hook").get_json()["uuid"]
    with app.app_context():
        assert app.extensions["celery"].tasks["republish_stale_pending"]() == 1
        assert db.session.get(Prediction, prediction_uuid).status == "failed"
    [message] = drain_queue(app, webhook_queue("inference").name)
    assert message.payload[0] == [prediction_uuid, 1]


def test_a_duplicate_delivery_message_is_skipped_once_its_attempt_is_recorded(make_app):
    from tasks.webhook_delivery import deliver_webhook

    app = make_app(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True)
    receiver = Receiver([503])
    try:
        prediction_uuid = post(app.test_client(), callback_url=receiver.url).get_json()["uuid"]
        with app.app_context():
            record_outcomes({prediction_uuid: failed_outcome("x")})
            assert deliver_webhook.run(prediction_uuid, 1).startswith("attempt 1 failed")
            assert deliver_webhook.run(prediction_uuid, 1) == "already delivered or attempted"
    finally:
        receiver.close()
    assert len(receiver.received) == 1
    [retry] = drain_queue(app, webhook_queue("inference").name)  # the first run's retry; none from the duplicate
    assert retry.payload[0] == [prediction_uuid, 2]


def test_an_ended_job_whose_delivery_was_never_queued_is_queued_by_the_sweep(make_app):
    from datetime import timedelta

    from sqlalchemy import update

    from jobs.records import utcnow
    from tasks.webhook_delivery import UNSENT_AFTER, requeue_unsent_webhooks

    app = make_app(WEBHOOK_SECRET=SECRET)
    client = app.test_client()
    lost, recent = (post(client, callback_url="https://8.8.8.8/hook").get_json()["uuid"] for _ in range(2))
    with app.app_context():
        record_outcomes({lost: failed_outcome("x"), recent: failed_outcome("x")})
        db.session.execute(
            update(Prediction)
            .where(Prediction.uuid == lost)
            .values(updated_at=utcnow() - timedelta(seconds=UNSENT_AFTER + 60))
        )
        db.session.commit()
        assert requeue_unsent_webhooks.run() == 1
        db.session.add(WebhookDelivery(uuid=lost, attempt=1, status_code=500, duration=0.1))
        db.session.commit()
        assert requeue_unsent_webhooks.run() == 0
    [message] = drain_queue(app, webhook_queue("inference").name)
    assert message.payload[0] == [lost, 1]


def ended_job_with_callback(app, callback_url: str) -> str:
    """An ended job whose stored callback URL never went through today's checks at POST."""
    with app.app_context():
        db.session.add(Prediction(uuid=(prediction_uuid := str(uuid.uuid4())), name="x.jpg", image_url="file:///x"))
        db.session.commit()
        record_outcomes({prediction_uuid: failed_outcome("x")})
        db.session.get(Prediction, prediction_uuid).callback_url = callback_url
        db.session.commit()
    return prediction_uuid


@pytest.mark.parametrize(
    "callback_url, reason",
    [
        ("http://8.8.8.8/a\r\nX-Injected: 1", "control character"),
        ("http://8.8.8.8/a b", "space or control character"),
        ("http://\U0001f600.example/", "not a valid internationalized name"),
    ],
)
def test_a_stored_url_that_can_never_be_delivered_is_given_up_at_once_with_the_reason(make_app, callback_url, reason):
    from tasks.webhook_delivery import deliver_webhook

    app = make_app(WEBHOOK_SECRET=SECRET)
    prediction_uuid = ended_job_with_callback(app, callback_url)
    with app.app_context():
        assert deliver_webhook.run(prediction_uuid, 1) == "given up"
        [attempt] = db.session.query(WebhookDelivery).all()
    assert attempt.status_code is None and reason in attempt.error
    assert drain_queue(app, webhook_queue("inference").name) == [], "not retried for an hour"


def test_a_non_ascii_url_is_delivered_with_its_path_percent_encoded(make_app):
    """Such a URL once crashed the delivery task with UnicodeEncodeError."""
    from tasks.webhook_delivery import deliver_webhook

    app = make_app(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True)
    receiver = Receiver([204])
    try:
        prediction_uuid = ended_job_with_callback(app, receiver.url + "/bücher?q=ä")
        with app.app_context():
            assert deliver_webhook.run(prediction_uuid, 1) == "delivered: 204"
    finally:
        receiver.close()
    assert receiver.received[0]["path"] == "/hook/b%C3%BCcher?q=%C3%A4"


def test_an_unexpected_error_in_an_attempt_is_recorded_as_its_outcome_and_retried(make_app, monkeypatch):
    from tasks import webhook_http
    from tasks.webhook_delivery import deliver_webhook

    def broken(*_):
        raise RuntimeError("a bug in the sender")

    monkeypatch.setattr(webhook_http, "post", broken)
    app = make_app(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_FIRST_RETRY=7)
    prediction_uuid = ended_job_with_callback(app, "http://127.0.0.1:9/hook")
    with app.app_context():
        assert (
            deliver_webhook.run(prediction_uuid, 1)
            == "attempt 1 failed (RuntimeError: a bug in the sender); next in 7s"
        )
        [attempt] = db.session.query(WebhookDelivery).all()
    assert (attempt.status_code, attempt.error) == (None, "RuntimeError: a bug in the sender")
    [retry] = drain_queue(app, webhook_queue("inference").name)
    assert retry.payload[0] == [prediction_uuid, 2]


def test_a_delivery_whose_destination_is_busy_goes_back_to_the_broker_without_an_attempt(make_app):
    from tasks.webhook_delivery import SLOTS, deliver_webhook

    app = make_app(WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_PER_DESTINATION=1)
    prediction_uuid = ended_job_with_callback(app, "http://127.0.0.1:9/hook")
    assert SLOTS.take(("127.0.0.1", 9), 1)  # an attempt to the same receiver is in flight
    try:
        with app.app_context():
            assert deliver_webhook.run(prediction_uuid, 1) == "destination busy; again in 10s"
            assert db.session.query(WebhookDelivery).count() == 0
    finally:
        SLOTS.give_back(("127.0.0.1", 9))
    [again] = drain_queue(app, webhook_queue("inference").name)
    assert again.payload[0] == [prediction_uuid, 1] and again.headers["eta"]
