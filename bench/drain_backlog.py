"""Does a second worker drain a queued backlog faster? Times one worker, then two, on the same backlog.

Queues ``--jobs`` images (the shared images, cycled) with no worker running, starts
the workers (``--concurrency 1`` each) and times from the first result to the last,
so model loading is left out. Uses a database and a queue of its own on the MariaDB
and RabbitMQ the tests use, and drops them afterwards:

    .venv/bin/python bench/drain_backlog.py --jobs 600

Each worker process runs a one-thread LiteRT interpreter, so on a 2-core machine a
second worker puts the second core to work (1.88x measured; see README "Scaling").
"""
import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))
SHARED_IMAGES = PROJECT_ROOT.parent / "shared" / "images"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="backlog size (default: %(default)s)")
    parser.add_argument("--mysql", default=os.environ.get("TEST_MYSQL_URL", "mysql+mysqldb://root@127.0.0.1:3306"),
                        help="MariaDB server URL; a bench database is created and dropped there")
    parser.add_argument("--amqp", default=os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"))
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for one drain")
    return parser.parse_args()


def queue_backlog(app, images: list[Path], jobs: int) -> None:
    from tasks.classify import enqueue_classification
    from webapp.extensions import db
    from webapp.predictions.models import Prediction

    with app.app_context():
        for path in itertools.islice(itertools.cycle(images), jobs):
            job = str(uuid.uuid4())
            url = app.extensions["image_store"].save(f"{job}{path.suffix.lower()}", path.read_bytes())
            db.session.add(Prediction(uuid=job, name=path.name, image_url=url))
            db.session.commit()
            if not enqueue_classification(job, url):
                raise RuntimeError("the broker refused a job")


def start_worker(env: dict, name: str, log_dir: Path) -> subprocess.Popen:
    log = (log_dir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "wsgi:celery_app", "worker", "--concurrency", "1",
         "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def time_drain(app, workers: int, jobs: int, env: dict, log_dir: Path, timeout: float) -> tuple[float, int]:
    """Seconds from the first finished job to the last, and the jobs finished in that time."""
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.predictions.models import PENDING, Prediction

    queue_backlog(app, sorted(p for p in SHARED_IMAGES.iterdir() if p.suffix == ".JPEG"), jobs)
    processes = [start_worker(env, f"bench{workers}-{n}", log_dir) for n in range(workers)]
    first = None
    deadline = time.monotonic() + timeout
    try:
        with app.app_context():
            while True:
                pending = db.session.scalar(select(func.count()).where(Prediction.status == PENDING))
                db.session.rollback()
                now = time.monotonic()
                if first is None and pending < jobs:
                    first, first_pending = now, pending
                if pending == 0:
                    return now - first, first_pending
                if now > deadline or any(p.poll() is not None for p in processes):
                    raise RuntimeError(f"drain did not finish; see the logs in {log_dir}")
                time.sleep(0.05)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def main() -> None:
    args = parse_args()
    from sqlalchemy import create_engine, text

    name = f"imgsvc_bench_{uuid.uuid4().hex[:8]}"
    server = create_engine(args.mysql, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    work = Path(tempfile.mkdtemp(prefix="drain-bench-"))
    env = {**os.environ, "DATABASE_URL": f"{args.mysql}/{name}", "CELERY_BROKER_URL": args.amqp,
           "CELERY_QUEUE": name, "INSTANCE_PATH": str(work), "IMAGE_STORE_URL": (work / "images").as_uri(),
           "PYTHON_DOTENV_DISABLED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.update(env)
    try:
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                       cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
        from webapp import create_app

        app = create_app()
        timings = {workers: time_drain(app, workers, args.jobs, env, work, args.timeout) for workers in (1, 2)}
        shutil.rmtree(work)  # kept on failure, for the worker logs
    finally:
        with server.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        from kombu import Connection, Exchange, Queue

        with Connection(args.amqp) as connection:
            Queue(name, Exchange(name), routing_key=name).bind(connection.channel()).delete()
    rates = {}
    for workers, (seconds, drained) in timings.items():
        rates[workers] = drained / seconds
        print(f"{workers} worker{'s' if workers > 1 else ' '}: backlog of {args.jobs} drained in {seconds:.1f} s "
              f"after the first result ({rates[workers]:.1f} jobs/s)")
    print(f"speed-up with a second worker: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
