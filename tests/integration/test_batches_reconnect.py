"""celery-batches' flush timer after the broker connection is lost: the cause of the failover stall.

Celery 5.6 clears its event loop's timers when the broker connection is lost
(``celery.worker.loops.asynloop``) and builds every task's strategy again once reconnected.
celery-batches starts its flush timer only while the timer's handle is None, and the handle of the
cleared timer stays set: from then on a batch leaves only once ``flush_every`` requests have
gathered, and fewer jobs than that wait in the worker, unacked, for ever (docs/scaling.md, "Broker
cluster"). ``tasks.batching.restart_flush_timer``, which ``NoLossBatches`` calls at every
reconnection, forgets the handle.

A worker without the model (``tests/support/batches_reconnect_app.py``, a plain celery-batches task)
runs on a private RabbitMQ node, which is killed while a stream of jobs keeps the timer armed and
started again; then a few lone jobs are sent.
"""

import os
import sys
import time

import pytest
from celery import Celery

from deploy.harness import Process
from tests.support.polling import until

TASK = "batches_reconnect.record"
ATTEMPTS = 3
STREAM = 100  # jobs sent just before the kill, 5 ms apart: the flush timer is armed when it comes
LONE = 5  # fewer than flush_every (32): only the flush timer sends them to the pool
RUN_WITHIN = 10  # seconds; the timer fires every 0.1 s
LOST = "Connection to broker lost"


def send(broker_url: str, jobs: list[str], spacing: float = 0.0) -> None:
    client = Celery("client", broker=broker_url)
    try:
        for job in jobs:
            client.send_task(TASK, args=[job])
            time.sleep(spacing)
    finally:
        client.close()


@pytest.mark.parametrize("restart", [False, True], ids=["celery-batches as is", "flush timer restarted"])
def test_lone_jobs_after_a_reconnection_run_only_if_the_flush_timer_is_restarted(own_rabbitmq, tmp_path, restart):
    ran_file = tmp_path / "ran.txt"
    ran_file.touch()
    env = {
        **os.environ,
        "BATCHES_TEST_BROKER": own_rabbitmq.url,
        "BATCHES_TEST_OUT": str(ran_file),
        "RESTART_FLUSH_TIMER": "1" if restart else "0",
    }
    worker = Process(
        [
            *(sys.executable, "-m", "celery", "-A", "tests.support.batches_reconnect_app", "worker"),
            *(
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ),
        ],
        env,
        tmp_path / "worker.log",
    )
    try:
        worker.wait_for(" ready.")

        def ran() -> set[str]:
            return set(ran_file.read_text().split())

        lone_jobs_ran = []
        for attempt in range(ATTEMPTS):
            send(own_rabbitmq.url, [f"stream-{attempt}-{index}" for index in range(STREAM)], spacing=0.005)
            lost_before = worker.output().count(LOST)
            own_rabbitmq.kill()
            own_rabbitmq.start()
            until(
                lambda before=lost_before: worker.output().count(LOST) > before
                and "Connected to" in worker.output().split(LOST)[-1],
                "the worker reconnects",
                60,
            )
            lone = [f"lone-{attempt}-{index}" for index in range(LONE)]
            send(own_rabbitmq.url, lone)
            try:
                lone_jobs_ran.append(until(lambda jobs=set(lone): jobs <= ran(), "the lone jobs run", RUN_WITHIN))
            except TimeoutError:
                lone_jobs_ran.append(False)
    finally:
        worker.stop()
    print(f"\n{'restarted' if restart else 'as is'}: lone jobs ran after each reconnection: {lone_jobs_ran}")
    if restart:
        assert all(lone_jobs_ran)
    else:  # the stall: after a reconnection that came while the timer was armed, they wait for ever
        assert not all(lone_jobs_ran)
