"""How soon a healthy receiver's webhook arrives while many receivers hang: delivery isolation.

Starts the webhook worker as the Procfile runs it, on a database and queue of its own
(TEST_MYSQL_URL, TEST_AMQP_URL; dropped afterwards), with ``--hanging`` receivers on
loopback (half accept and never answer, half trickle their answer a byte at a time), each
the callback of ``--jobs-each`` ended jobs. Then, once a second for ``--rounds`` seconds (a
few attempt timeouts, so the hanging deliveries time out and come back), it ends one job
whose callback is a healthy receiver, as a worker does (``record_outcomes`` and
``announce_ended``), and times its webhook's arrival from the job's ``finished_at``.
Compare with the threads of the old default (``--concurrency 8``):

    .venv/bin/python -m bench.webhook_isolation --hanging 50
    .venv/bin/python -m bench.webhook_isolation --hanging 50 --concurrency 8
"""

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC
from pathlib import Path

from deploy.harness import app_for, create_database, delete_queues, deployment_env, drop_database, start_webhook_worker
from tests.support.webhook_receiver import Receiver, SlowReceivers

WAIT = 120  # seconds a round waits for the healthy webhook


def ended_job(app, callback_url: str) -> tuple[str, float]:
    """A job ended as a worker ends it; returns its uuid and its finished_at (unix seconds)."""
    from jobs.database import db
    from jobs.endings import announce_ended
    from jobs.records import Prediction, done_outcome, insert_prediction, record_outcomes

    prediction_uuid = str(uuid.uuid4())
    with app.app_context():
        insert_prediction(prediction_uuid, "bench", "file:///nowhere", callback_url)
        record_outcomes({prediction_uuid: done_outcome("dogsled", 0.9, [])})
        announce_ended({prediction_uuid: "done"})
        finished = db.session.get(Prediction, prediction_uuid).finished_at
        db.session.rollback()
    return prediction_uuid, finished.replace(tzinfo=UTC).timestamp()  # stored as naive UTC


def run(hanging: int, jobs_each: int, rounds: int, concurrency: int) -> dict:
    database_url = create_database("imgsvc_bench_hooks")
    queue = f"inference-bench-{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as instance:
            env = deployment_env(
                Path(instance),
                database_url,
                queue,
                WEBHOOK_SECRET="bench",
                WEBHOOK_ALLOW_PRIVATE="1",
                WEBHOOK_CONCURRENCY=str(concurrency),
            )
            app = app_for(env)
            worker = start_webhook_worker(env, Path(instance))
            healthy = Receiver()
            try:
                with SlowReceivers(hanging // 2) as silent, SlowReceivers(hanging - hanging // 2, trickle=True) as slow:
                    for url in silent.urls + slow.urls:
                        for _ in range(jobs_each):
                            ended_job(app, url)
                    deadline = time.monotonic() + 30
                    while not all(silent.accepted + slow.accepted) and time.monotonic() < deadline:
                        time.sleep(0.05)
                    delays, hung = [], []
                    for _ in range(rounds):
                        prediction_uuid, finished = ended_job(app, healthy.url)
                        arrived = None
                        deadline = time.monotonic() + WAIT
                        while arrived is None and time.monotonic() < deadline:
                            arrived = next(
                                (
                                    hit["at"]
                                    for hit in healthy.received
                                    if hit["headers"]["X-Webhook-Id"] == prediction_uuid
                                ),
                                None,
                            )
                            time.sleep(0.01)
                        hung.append(len(silent.connections) + len(slow.connections))
                        delays.append(arrived - finished if arrived else float("inf"))
                        time.sleep(1)
            finally:
                healthy.close()
                worker.stop()
    finally:
        drop_database(database_url)
        delete_queues([queue])
    return {"delays": delays, "hung": hung}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hanging", type=int, default=50)
    parser.add_argument("--jobs-each", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=200, help="webhook worker threads (WEBHOOK_CONCURRENCY)")
    args = parser.parse_args()
    result = run(args.hanging, args.jobs_each, args.rounds, args.concurrency)
    delays, hung = result["delays"], result["hung"]
    loaded = sorted(delay for delay, count in zip(delays, hung) if count >= args.hanging)

    def seconds(value: float) -> str:
        return f"{value:.2f} s" if value != float("inf") else f"not within {WAIT} s"

    print(
        f"{args.hanging} hanging receivers x {args.jobs_each} jobs, {args.concurrency} threads: "
        f"healthy webhook after its job's end: median {seconds(statistics.median(delays))}, "
        f"max {seconds(max(delays))} over {len(delays)} rounds; "
        f"in the {len(loaded)} rounds with at least {args.hanging} deliveries hanging: "
        + (f"median {seconds(statistics.median(loaded))}, max {seconds(loaded[-1])}" if loaded else "none")
    )


if __name__ == "__main__":
    main()
