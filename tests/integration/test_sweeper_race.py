"""The sweeper and a worker ending the same job: one announcement, one webhook (real worker, MariaDB, RabbitMQ)."""

import uuid
from datetime import timedelta

from kombu import Connection
from sqlalchemy import update

from deploy.harness import AMQP_URL, app_for, deployment_env, queue_length, start_webhook_worker, start_worker
from jobs.broker import webhook_queue
from jobs.database import db
from jobs.queue import publish_job
from jobs.records import DONE, FAILED, Prediction, find_prediction, insert_prediction, utcnow
from jobs.webhook_schedule import WebhookDelivery
from tests.conftest import SAMPLES
from tests.support.polling import until
from tests.support.webhook_receiver import Receiver

DEADLINE = 60


def given_up_on(app, callback_url: str) -> tuple[str, str]:
    """A job pending for an hour and republished as often as allowed: the next sweep fails it."""
    prediction_uuid = str(uuid.uuid4())
    image_url = app.extensions["image_store"].save(f"{prediction_uuid}.jpg", (SAMPLES / "bmw.png").read_bytes())
    insert_prediction(prediction_uuid, "bmw.png", image_url, callback_url)
    db.session.execute(
        update(Prediction)
        .where(Prediction.uuid == prediction_uuid)
        .values(updated_at=utcnow() - timedelta(hours=1), republished=app.extensions["settings"].MAX_DELIVERIES)
    )
    db.session.commit()
    return prediction_uuid, image_url


def test_a_job_a_worker_ends_between_the_sweepers_select_and_update_gets_one_webhook(tmp_path, mysql_url, new_queue):
    from tasks.sweeper import settle, stale_pending

    env = deployment_env(
        tmp_path / "instance", mysql_url, new_queue(), WEBHOOK_SECRET="race-secret", WEBHOOK_ALLOW_PRIVATE="1"
    )
    webhooks = webhook_queue(env["CELERY_QUEUE"])
    with Connection(AMQP_URL) as connection:  # as the webhook worker would, so it can be counted from the start
        webhooks.bind(connection.channel()).declare()
    hook = Receiver()
    worker = start_worker(env, tmp_path)
    app = app_for(env)
    try:
        with app.app_context():
            raced, raced_image = given_up_on(app, hook.url)
            abandoned, _ = given_up_on(app, hook.url)
            stale = stale_pending()
            assert {raced, abandoned} <= {row.uuid for row in stale}

            # Between the sweeper's select and its update, a worker ends one of them.
            assert publish_job(raced, raced_image)
            until(lambda: find_prediction(raced).status == DONE, "the worker did not finish the job", DEADLINE)
            until(lambda: queue_length(webhooks.name) == 1, "the worker queued no webhook", DEADLINE)

            failed, republished = settle([row for row in stale if row.uuid in (raced, abandoned)])
            assert (failed, republished) == ({abandoned}, set()), "the sweeper ended only the job no worker ended"
            assert find_prediction(raced).status == DONE and find_prediction(abandoned).status == FAILED
        assert queue_length(webhooks.name) == 2, "one delivery for each job: the worker's and the sweeper's"

        webhook_worker = start_webhook_worker(env, tmp_path)
        try:
            until(lambda: len(hook.received) >= 2, "the webhooks did not arrive", DEADLINE)
            until(lambda: queue_length(webhooks.name) == 0, "a delivery is still queued", DEADLINE)
        finally:
            webhook_worker.stop()
        with app.app_context():
            attempts = (
                db.session.query(WebhookDelivery.uuid, WebhookDelivery.status_code)
                .filter(WebhookDelivery.uuid.in_([raced, abandoned]))
                .all()
            )
    finally:
        worker.stop()
        hook.close()
    assert sorted(attempts) == sorted([(raced, 200), (abandoned, 200)])
    assert sorted(each["headers"]["X-Webhook-Id"] for each in hook.received) == sorted([raced, abandoned])
