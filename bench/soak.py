"""Soak: many POSTs at a steady rate through the real deployment; prints rows = accepted = done, and lost.

Starts Gunicorn, a Celery worker and beat (deploy/harness.py) on a database and
a queue of their own on the MariaDB and RabbitMQ the tests use, sends
``--requests`` POSTs at ``--rate`` per second, waits until no job is pending,
then counts. Exits 1 if any accepted job is lost or not done. Drops its database
and queue afterwards:

    .venv/bin/python -m bench.soak --requests 5000 --rate 10
"""

import argparse
import base64
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from config.settings import PROJECT_ROOT
from deploy.harness import create_database, delete_queues, deployment_env, drop_database, running_service, start_beat

IMAGE = PROJECT_ROOT.parent / "shared" / "images" / "samples" / "elephant.jpg"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="POSTs to send (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=10, help="POSTs per second (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed to drain after the last POST")
    return parser.parse_args()


def send(base_url: str, count: int, rate: float) -> tuple[list[str], dict[int, int]]:
    """POSTs started on a fixed schedule (not one after the other), so a slow answer does not slow the rate."""
    body = {"name": IMAGE.name, "data": base64.b64encode(IMAGE.read_bytes()).decode()}
    accepted, answers, lock = [], {}, threading.Lock()

    def post(_):
        try:
            response = requests.post(f"{base_url}/inference/image", json=body, timeout=30)
            status, job = response.status_code, response.json().get("uuid")
        except requests.RequestException:
            status, job = 0, None
        with lock:
            answers[status] = answers.get(status, 0) + 1
            if status == 202:
                accepted.append(job)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        for n in range(count):
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
            pool.submit(post, n)
    return accepted, answers


def count(database_url: str, accepted: list[str]) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = dict(connection.execute(text("SELECT uuid, status FROM predictions")).all())
    engine.dispose()
    statuses = [rows.get(job) for job in accepted]
    return {
        "rows": len(rows),
        "done": statuses.count("done"),
        "failed": statuses.count("failed"),
        "pending": statuses.count("pending"),
        "lost": statuses.count(None),
    }


def main() -> int:
    args = parse_args()
    database = create_database("imgsvc_soak")
    queue = f"soak-{Path(database).name}"
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        env = deployment_env(work, database, queue, REPUBLISH_PENDING_AFTER="30")
        with running_service(env, work) as (base_url, _, _):
            beat = start_beat(env, work)
            try:
                started = time.monotonic()
                accepted, answers = send(base_url, args.requests, args.rate)
                sent_in = time.monotonic() - started
                deadline = time.monotonic() + args.timeout
                while (figures := count(database, accepted))["pending"] and time.monotonic() < deadline:
                    time.sleep(1)
                drained_in = time.monotonic() - started
            finally:
                beat.stop()
    finally:
        drop_database(database)
        delete_queues([queue])
    print(f"{args.requests} POSTs in {sent_in:.0f} s ({args.requests / sent_in:.1f}/s); answers {answers}")
    print(
        f"rows {figures['rows']} = accepted {len(accepted)} = done {figures['done']}; "
        f"failed {figures['failed']}, pending {figures['pending']}, lost {figures['lost']}; "
        f"all finished {drained_in:.0f} s after the first POST"
    )
    ok = figures["rows"] == len(accepted) == figures["done"] and figures["lost"] == 0
    if ok:
        shutil.rmtree(work)
    else:
        print(f"logs kept in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
