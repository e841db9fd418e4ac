"""Remote control: one control exchange per deployment, the webhook worker on its own, and no stale
command run at a worker's start on the embedded broker."""

from types import SimpleNamespace

from kombu import Connection

from tasks.control import drop_stale_control_messages


def test_each_deployment_and_the_webhook_worker_have_their_own_control_exchange(make_app):
    celery = make_app(CELERY_QUEUE="inference-a").extensions["celery"]
    assert celery.control.mailbox.exchange.name == "inference-a.pidbox"
    assert make_app(CELERY_QUEUE="inference-b").extensions["celery"].control.mailbox.exchange.name == (
        "inference-b.pidbox"
    )


def test_the_webhook_worker_answers_only_its_own_control_exchange():
    import tasks.webhook_worker

    app = tasks.webhook_worker.celery_app
    assert app.control.mailbox.exchange.name == f"{app.conf.task_default_queue}.webhooks.pidbox"


def test_a_worker_drops_control_messages_sent_while_it_was_down(make_app, tmp_path):
    """`celery control pool_grow` with the worker down leaves a file in its mailbox; at start it is gone,
    and the job messages beside it are kept."""
    celery = make_app(broker_url="filesystem://", INSTANCE_PATH=tmp_path / "instance").extensions["celery"]
    worker = "celery@host-a"
    folder = tmp_path / "instance" / "broker" / "queue"
    with Connection(celery.conf.broker_url, transport_options=celery.conf.broker_transport_options) as connection:
        celery.control.mailbox.get_queue(worker)(connection.default_channel).declare()  # as its earlier run did
        celery.control.broadcast("pool_grow", arguments={"n": 1}, connection=connection)
    celery.send_task("classify_image", args=["job"], queue=celery.conf.task_default_queue)
    mailbox = f".{worker}.{celery.conf.control_exchange}.pidbox.msg"
    assert [path for path in folder.iterdir() if path.name.endswith(mailbox)]

    drop_stale_control_messages(sender=worker, instance=SimpleNamespace(app=celery))

    assert not [path for path in folder.iterdir() if path.name.endswith(mailbox)]
    assert [path for path in folder.iterdir() if path.name.endswith(f".{celery.conf.task_default_queue}.msg")]
