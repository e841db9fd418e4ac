"""What 200 clients waiting with ``?wait=30`` cost the waiter, and how soon they hear of the end.

Starts the waiter (``webapp.waiter``) on a database and queue of its own (TEST_MYSQL_URL,
TEST_AMQP_URL; dropped afterwards), records ``--clients`` pending jobs, and opens one
``GET /predictions/<uuid>?wait=30`` per job at once. While they wait it samples the waiter's
resident memory and threads and the database connections in use; then it ends the jobs as a
worker does (``record_outcomes`` and ``announce_ended`` in batches of 32) and times each answer
from its batch's commit. Run once with RabbitMQ events and once with the polling fallback
(the embedded filesystem broker):

    .venv/bin/python -m bench.waiting --clients 200
"""

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from sqlalchemy import create_engine, text

from deploy.harness import (
    MYSQL_SERVER_URL,
    app_for,
    create_database,
    delete_queues,
    deployment_env,
    drop_database,
    start_waiter,
)

BATCH = 32  # jobs per worker batch (BATCH_MAX_SIZE)
WAIT = 30


def proc_status(pid: int) -> dict:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"])}


def database_connections(server, database: str) -> dict:
    """Connections open on ``database`` (the waiter's alone) and those running a statement, and the
    server's Threads_connected (shared with everything else on this MariaDB)."""
    with server.connect() as connection:
        rows = (
            connection.execute(
                text("SELECT COMMAND FROM information_schema.PROCESSLIST WHERE DB = :d"), {"d": database}
            )
            .scalars()
            .all()
        )
        total = int(connection.execute(text("SHOW STATUS LIKE 'Threads_connected'")).one()[1])
    return {"open": len(rows), "in_use": sum(command != "Sleep" for command in rows), "threads_connected": total}


def create_pending(app, count: int) -> list[str]:
    from jobs.database import db
    from jobs.records import Prediction

    uuids = [str(uuid.uuid4()) for _ in range(count)]
    with app.app_context():
        db.session.add_all(Prediction(uuid=u, name="bench", image_url="file:///nowhere") for u in uuids)
        db.session.commit()
        db.engine.dispose()  # so the connections counted on this database are the waiter's
    return uuids


def end_jobs(app, uuids: list[str]) -> dict[str, float]:
    """End the jobs as a worker does; returns each job's commit time."""
    from jobs.endings import announce_ended
    from jobs.records import done_outcome, record_outcomes

    committed = {}
    with app.app_context():
        for start in range(0, len(uuids), BATCH):
            batch = uuids[start : start + BATCH]
            record_outcomes({u: done_outcome("dogsled", 0.9, []) for u in batch})
            now = time.perf_counter()
            committed.update(dict.fromkeys(batch, now))
            announce_ended(dict.fromkeys(batch, "done"))
    return committed


async def wait_all(url: str, uuids: list[str], during_wait) -> dict[str, tuple[int, float]]:
    answers = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=WAIT + 10)) as session:

        async def one(prediction_uuid):
            async with session.get(f"{url}/predictions/{prediction_uuid}?wait={WAIT}") as response:
                await response.read()
                answers[prediction_uuid] = (response.status, time.perf_counter())

        requests = [asyncio.create_task(one(u)) for u in uuids]
        await asyncio.sleep(3)  # every request is in and waiting: none can be answered, the jobs are pending
        assert not answers, f"{len(answers)} answered before the jobs ended"
        committed = await during_wait()
        await asyncio.gather(*requests)
    return answers, committed


def run(label: str, clients: int, broker: str | None) -> dict:
    database_url = create_database("imgsvc_bench_wait")
    queue = f"inference-bench-{uuid.uuid4().hex[:8]}"
    server = create_engine(MYSQL_SERVER_URL)
    try:
        with tempfile.TemporaryDirectory() as instance:
            env = deployment_env(
                Path(instance), database_url, queue, **({"CELERY_BROKER_URL": broker} if broker else {})
            )
            app = app_for(env)
            uuids = create_pending(app, clients)
            waiter, url = start_waiter(env, Path(instance))
            try:
                idle = proc_status(waiter.popen.pid)
                sample = {}

                async def during_wait():
                    sample.update(proc_status(waiter.popen.pid))
                    sample.update(database_connections(server, database_url.rsplit("/", 1)[1]))
                    return await asyncio.to_thread(end_jobs, app, uuids)

                answers, committed = asyncio.run(wait_all(url, uuids, during_wait))
            finally:
                waiter.stop()
    finally:
        server.dispose()
        drop_database(database_url)
        delete_queues([queue])
    delays = sorted((answers[u][1] - committed[u]) * 1000 for u in uuids)
    statuses = {answers[u][0] for u in uuids}
    return {
        "label": label,
        "clients": clients,
        "statuses": statuses,
        "idle": idle,
        **sample,
        "p50": statistics.median(delays),
        "p99": delays[int(len(delays) * 0.99) - 1],
        "max": delays[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    for label, broker in (("RabbitMQ events", None), ("polling fallback (filesystem broker)", "filesystem://")):
        r = run(label, args.clients, broker)
        print(
            f"{r['label']}: {r['clients']} clients waiting, answers {sorted(r['statuses'])}; "
            f"after the commit p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms, max {r['max']:.0f} ms; "
            f"waiter RSS {r['idle']['rss_mb']:.0f} MB idle, {r['rss_mb']:.0f} MB waiting, threads {r['threads']}; "
            f"DB connections on its database {r['open']} open, {r['in_use']} in use; "
            f"server Threads_connected {r['threads_connected']}"
        )


if __name__ == "__main__":
    main()
