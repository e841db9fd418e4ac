"""Waiting and webhooks for real: Gunicorn, the waiter, the inference and webhook workers, MariaDB, RabbitMQ."""

import json
import sys
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import create_engine, text

from deploy.harness import (
    Process,
    app_for,
    deployment_env,
    free_port,
    running_service,
    start_waiter,
    start_webhook_worker,
)
from jobs.signing import SIGNATURE_HEADER, verify
from tests.conftest import SAMPLES
from tests.support.api import upload
from tests.support.polling import until
from tests.support.webhook_receiver import Receiver, SlowReceivers

SECRET = "integration-webhook-secret"
DEADLINE = 60


@pytest.fixture(scope="module")
def notify_env(tmp_path_factory, mysql_url, new_queue):
    # new_queue deletes the webhooks and delay queues and the events exchange beside the queue after the session.
    return deployment_env(
        tmp_path_factory.mktemp("notify"),
        mysql_url,
        new_queue(),
        REPUBLISH_PENDING_AFTER="30",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_ALLOW_PRIVATE="1",
        WEBHOOK_FIRST_RETRY="1",
        # Long enough that the hanging receivers of the isolation test all hang at once.
        WEBHOOK_ATTEMPT_TIMEOUT="40",
    )


@pytest.fixture(scope="module")
def notify_service(notify_env, tmp_path_factory):
    logs = tmp_path_factory.mktemp("notify-logs")
    with running_service(notify_env, logs) as (base_url, _, _):
        waiter, waiter_url = start_waiter(notify_env, logs)
        webhooks = start_webhook_worker(notify_env, logs)
        try:
            yield base_url, waiter_url
        finally:
            waiter.stop()
            webhooks.stop()


@pytest.fixture(scope="module")
def database(notify_env):
    engine = create_engine(notify_env["DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=(200,)):
        made.append(Receiver(statuses, path="/hooks/result?source=test"))
        return made[-1]

    yield make
    for each in made:
        each.close()


def pending_row(env) -> tuple[str, str]:
    """A pending job whose message is not published yet, so the test decides when it runs."""
    from jobs.database import db
    from jobs.records import Prediction

    app = app_for(env)
    prediction_uuid = str(uuid.uuid4())
    with app.app_context():
        image_url = app.extensions["image_store"].save(f"{prediction_uuid}.jpg", (SAMPLES / "bmw.png").read_bytes())
        db.session.add(Prediction(uuid=prediction_uuid, name="bmw.png", image_url=image_url))
        db.session.commit()
    return prediction_uuid, image_url


def test_wait_answers_when_the_job_ends_not_when_the_wait_is_over(notify_service, notify_env, database):
    from jobs.queue import publish_job

    _, waiter_url = notify_service
    prediction_uuid, image_url = pending_row(notify_env)
    answer = {}

    def wait():
        response = requests.get(f"{waiter_url}/predictions/{prediction_uuid}?wait=25", timeout=40)
        answer.update(response=response, at=time.time())

    started = time.time()
    waiting = threading.Thread(target=wait)
    waiting.start()
    time.sleep(1.5)  # the job is held back on purpose: the answer must wait for it
    with app_for(notify_env).app_context():
        assert publish_job(prediction_uuid, image_url)
    waiting.join(timeout=40)

    response = answer["response"]
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done" and response.json()["prediction"] == "convertible"
    with database.connect() as connection:
        finished = connection.execute(
            text("SELECT UNIX_TIMESTAMP(updated_at) FROM predictions WHERE uuid = :u"), {"u": prediction_uuid}
        ).scalar_one()
    assert answer["at"] - started >= 1.5, "answered before the job ran"
    assert answer["at"] >= float(finished), "answered before the result was committed"
    assert answer["at"] - float(finished) < 2, "the completion event did not wake the waiter"
    assert answer["at"] - started < 15, "the waiter used up its wait"


def test_wait_on_a_job_that_does_not_end_answers_pending_after_n_seconds(notify_service, notify_env):
    _, waiter_url = notify_service
    prediction_uuid, _ = pending_row(notify_env)
    started = time.monotonic()
    response = requests.get(f"{waiter_url}/predictions/{prediction_uuid}?wait=1.5", timeout=10)
    elapsed = time.monotonic() - started
    assert response.status_code == 202 and response.headers["Retry-After"] == "1"
    assert response.json() == {"uuid": prediction_uuid, "status": "pending"}
    assert 1.5 <= elapsed < 3
    assert requests.get(f"{waiter_url}/predictions/{prediction_uuid}?wait=31", timeout=10).status_code == 422


def deliveries(database, prediction_uuid):
    with database.connect() as connection:
        return connection.execute(
            text(
                "SELECT attempt, status_code, error, attempted_at FROM webhook_deliveries "
                "WHERE uuid = :u ORDER BY attempt"
            ),
            {"u": prediction_uuid},
        ).all()


def test_webhook_delivers_the_signed_result(notify_service, database, receiver):
    base_url, _ = notify_service
    hook = receiver()
    response = requests.post(f"{base_url}/inference/image", data=upload(callback_url=hook.url), timeout=30)
    assert response.status_code == 202, response.text
    prediction_uuid = response.json()["uuid"]

    until(lambda: hook.received, "a webhook", DEADLINE)
    [delivery] = hook.received
    assert verify(SECRET, delivery["body"], delivery["headers"][SIGNATURE_HEADER])
    assert not verify("another-secret", delivery["body"], delivery["headers"][SIGNATURE_HEADER])
    assert delivery["headers"]["Content-Type"] == "application/json"
    assert delivery["headers"]["X-Webhook-Id"] == prediction_uuid
    assert json.loads(delivery["body"]) == requests.get(f"{base_url}/predictions/{prediction_uuid}", timeout=10).json()
    assert json.loads(delivery["body"])["status"] == "done"
    [(attempt, status_code, error, _)] = until(
        lambda: deliveries(database, prediction_uuid), "the attempt recorded", DEADLINE
    )
    assert (attempt, status_code, error) == (1, 200, None)


def test_webhook_retries_with_backoff_until_the_receiver_accepts(notify_service, database, receiver):
    base_url, _ = notify_service
    hook = receiver(statuses=(500, 500, 204))
    response = requests.post(
        f"{base_url}/inference/image", data=upload("soccer_ball.jpg"), headers={"X-Callback-URL": hook.url}, timeout=30
    )
    assert response.status_code == 202, response.text
    prediction_uuid = response.json()["uuid"]

    recorded = until(
        lambda: (rows := deliveries(database, prediction_uuid)) and len(rows) >= 3 and rows,
        "three attempts recorded",
        DEADLINE,
    )
    assert [(row.attempt, row.status_code) for row in recorded] == [(1, 500), (2, 500), (3, 204)]
    assert len(hook.received) == 3
    gaps = [later["at"] - earlier["at"] for earlier, later in zip(hook.received, hook.received[1:])]
    assert gaps[0] >= 1 and gaps[1] >= 2, f"no backoff between attempts: {gaps}"
    assert all(verify(SECRET, each["body"], each["headers"][SIGNATURE_HEADER]) for each in hook.received)
    assert [each["headers"]["X-Webhook-Attempt"] for each in hook.received] == ["1", "2", "3"]


HANGING = 50
SAME_RECEIVER = 10  # more jobs for one hanging receiver than it has slots (WEBHOOK_PER_DESTINATION, 4)


def test_fifty_hanging_receivers_do_not_delay_a_healthy_ones_webhook(notify_service, database, receiver):
    """Half accept and never answer, half trickle bytes; one of them gets ten more jobs. Their deliveries
    hang in the webhook worker while a healthy receiver's webhook arrives within 2 s of its job's end."""
    base_url, _ = notify_service
    with SlowReceivers(HANGING // 2) as silent, SlowReceivers(HANGING // 2, trickle=True) as trickling:
        urls = silent.urls + trickling.urls + [silent.urls[0]] * SAME_RECEIVER
        for url in urls:
            response = requests.post(f"{base_url}/inference/image", data=upload(callback_url=url), timeout=30)
            assert response.status_code == 202, response.text
        until(
            lambda: all(silent.accepted + trickling.accepted) and silent.accepted[0] >= 4,
            "the hanging receivers' deliveries did not all start",
            timeout=35,
        )
        hook = receiver()
        response = requests.post(f"{base_url}/inference/image", data=upload(callback_url=hook.url), timeout=30)
        assert response.status_code == 202, response.text
        until(lambda: hook.received, "the healthy receiver's webhook", DEADLINE)
        arrived = hook.received[0]["at"]
        still_hanging = len(silent.connections) + len(trickling.connections)
        assert silent.accepted[0] == 4, "one receiver holds no more than its slots, even with 11 jobs"

    with database.connect() as connection:
        finished = connection.execute(
            text("SELECT UNIX_TIMESTAMP(finished_at) FROM predictions WHERE uuid = :u"),
            {"u": response.json()["uuid"]},
        ).scalar_one()
    assert still_hanging >= HANGING, f"only {still_hanging} deliveries were hanging when the healthy one arrived"
    assert arrived - float(finished) < 2, (
        f"the healthy webhook arrived {arrived - float(finished):.1f} s after its job ended"
    )


def test_private_callback_refused_at_post_without_the_allow_setting(notify_env, tmp_path):
    env = {key: value for key, value in notify_env.items() if key != "WEBHOOK_ALLOW_PRIVATE"}
    port = free_port()
    web = Process(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "wsgi:app"],
        env,
        tmp_path / "web.log",
    )
    try:
        until(lambda: _answers(f"http://127.0.0.1:{port}/health"), "the web answering", DEADLINE)
        for url in (
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
        ):
            response = requests.post(
                f"http://127.0.0.1:{port}/inference/image", data=upload(callback_url=url), timeout=30
            )
            assert response.status_code == 422, (url, response.text)
            assert response.headers["Content-Type"] == "application/problem+json"
            assert "not a public address" in response.json()["detail"]
    finally:
        web.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still booting
        return False
