"""A worker app with one celery-batches task and no model, for tests/integration/test_batches_reconnect.py.

The task appends the argument of each request it ran to ``BATCHES_TEST_OUT``; with
``RESTART_FLUSH_TIMER=1`` its strategy calls ``tasks.batching.restart_flush_timer``, as
``NoLossBatches`` does whenever Celery builds it again after a reconnection.
"""

import os

from celery import Celery
from celery_batches import Batches

from tasks.batching import restart_flush_timer

app = Celery("batches_reconnect", broker=os.environ["BATCHES_TEST_BROKER"])
app.conf.broker_connection_retry_on_startup = True
app.conf.worker_prefetch_multiplier = 64


class Recorded(Batches):
    def Strategy(self, task, app, consumer):
        if os.environ.get("RESTART_FLUSH_TIMER") == "1":
            restart_flush_timer(self)
        return super().Strategy(task, app, consumer)


@app.task(base=Recorded, flush_every=32, flush_interval=0.1, name="batches_reconnect.record")
def record(requests):
    with open(os.environ["BATCHES_TEST_OUT"], "a") as out:
        out.writelines(f"{request.args[0]}\n" for request in requests)
