"""Does a second worker drain a queued backlog faster? Times one worker, then two, on the same backlog.

Queues ``--jobs`` images (the shared images, cycled) with no worker running, starts
the workers (``--concurrency 1`` each) together and times from the first result to
the last, so model loading is left out. Uses a database and a queue of its own on
the MariaDB and RabbitMQ the tests use (TEST_MYSQL_URL, TEST_AMQP_URL), and drops
them afterwards:

    .venv/bin/python -m bench.drain_backlog --jobs 600

Each worker process runs a one-thread LiteRT interpreter, so on a 2-core machine a
second worker puts the second core to work (1.89x measured; see docs/scaling.md).
"""

import argparse
import itertools
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from config.settings import PROJECT_ROOT
from deploy.harness import app_for, create_database, delete_queues, deployment_env, drop_database, launch_worker

SHARED_IMAGES = PROJECT_ROOT.parent / "shared" / "images"


def queue_backlog(app, images: list[Path], jobs: int) -> None:
    from jobs.submit import submit_job

    with app.app_context():
        for path in itertools.islice(itertools.cycle(images), jobs):
            submit_job(path.name, path.read_bytes(), path.suffix.lower().lstrip("."))


def drain_rate(jobs: int, workers: int, concurrency: int, timeout: float = 900) -> float:
    """Jobs/s of ``workers`` workers (``concurrency`` processes each) draining ``jobs`` queued jobs,
    from the first finished job to the last."""
    database_url = create_database("imgsvc_bench")
    queue = f"inference-bench-{uuid.uuid4().hex[:8]}"
    engine = create_engine(database_url)
    try:
        with tempfile.TemporaryDirectory() as instance:
            env = deployment_env(Path(instance), database_url, queue)
            queue_backlog(app_for(env), sorted(SHARED_IMAGES.glob("*.JPEG")), jobs)
            started = [launch_worker(env, Path(instance), f"drain{n}", concurrency) for n in range(workers)]
            try:
                with engine.connect() as connection:

                    def pending() -> int:
                        connection.rollback()
                        return connection.execute(
                            text("SELECT COUNT(*) FROM predictions WHERE status = 'pending'")
                        ).scalar()

                    deadline = time.monotonic() + timeout
                    while (left := pending()) == jobs:
                        time.sleep(0.005)
                    start = time.perf_counter()
                    while pending():
                        if time.monotonic() > deadline or any(w.popen.poll() is not None for w in started):
                            raise RuntimeError("drain did not finish:\n" + started[0].output()[-3000:])
                        time.sleep(0.01)
                    return left / (time.perf_counter() - start)
            finally:
                for worker in started:
                    worker.stop()
    finally:
        engine.dispose()
        drop_database(database_url)
        delete_queues([queue])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=600, help="backlog size (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for one drain")
    args = parser.parse_args()
    rates = {workers: drain_rate(args.jobs, workers, concurrency=1, timeout=args.timeout) for workers in (1, 2)}
    for workers, rate in rates.items():
        print(f"{workers} worker{'s' if workers > 1 else ' '}: backlog of {args.jobs} drained at {rate:.1f} jobs/s")
    print(f"speed-up with a second worker: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
