"""Workers consume through Celery's consumer minus the native-delayed-delivery step (tasks/consumer.py)."""

from celery.utils.imports import symbol_by_name
from celeryconfig import celery_settings

from config.settings import load_settings
from tasks.consumer import DELAYED_DELIVERY_STEP, WorkerConsumer


def test_workers_on_rabbitmq_consume_without_the_delayed_delivery_step_and_keep_every_other():
    settings = load_settings({"CELERY_BROKER_URL": "amqp://guest:guest@10.0.0.1:5672//;amqp://guest:guest@10.0.0.2//"})
    consumer = symbol_by_name(celery_settings(settings)["worker_consumer"])
    assert consumer is WorkerConsumer
    steps = WorkerConsumer.Blueprint.default_steps
    assert DELAYED_DELIVERY_STEP not in steps
    assert steps == [
        step for step in WorkerConsumer.__mro__[1].Blueprint.default_steps if step != DELAYED_DELIVERY_STEP
    ]
    assert "celery.worker.consumer.tasks:Tasks" in steps
