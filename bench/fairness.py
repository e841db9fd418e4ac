"""Fair sharing and the embedded default, on ``make run``'s processes (``deploy.supervise`` and the Procfile).

    .venv/bin/python -m bench.fairness [--bulk 2000] [--singles 40] [--flood 1000]

1. embedded default (no configuration: SQLite and the embedded broker): one image on an idle
   service, POST to done (median of 5), then the batch client's flood (``--flood`` images,
   16 threads, ``?wait=`` long polls), the same client ``bench.throughput`` runs as shipped;
2. interactive latency during a batch (MariaDB and RabbitMQ): ``--bulk`` images queued as one
   client's bulk work, and meanwhile ``--singles`` single-image POSTs from another client, one
   after the other, each waited for with ``?wait=``: their p50 and p99 POST to done;
3. two clients (MariaDB and RabbitMQ): client A queues ``--bulk`` images, then client B as many;
   each one's share of the images finished while both had work left.

Bulk work is queued as a batch queues it (``jobs.submit.submit_job(..., bulk=True, client=...)``:
image stored, row committed, published to the client's bulk lane), from this process.
"""

import argparse
import itertools
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sqlalchemy import bindparam, create_engine, text

from bench.as_shipped import batch_client, running_make_run
from client.batch import classify_one
from deploy.harness import app_for, create_database, delete_queues, deployment_env, drop_database

SUBMITTERS = 4  # threads queueing bulk work


def embedded_env(instance: Path) -> dict:
    """``make run``'s defaults: SQLite and the embedded broker under the instance folder."""
    return deployment_env(
        instance, f"sqlite:///{instance / 'predictions.sqlite'}", "inference", CELERY_BROKER_URL="embedded://"
    )


def queue_bulk(env: dict, files: list[Path], count: int, client: str) -> list[str]:
    """``count`` jobs (``files`` cycled) queued as ``client``'s bulk work."""
    from jobs.submit import submit_job

    app = app_for(env)
    images = [(path.name, path.read_bytes(), path.suffix.lstrip(".").lower() or "jpg") for path in files]
    chosen = list(itertools.islice(itertools.cycle(images), count))

    def submit(image):
        with app.app_context():
            return submit_job(*image, bulk=True, client=client)

    with ThreadPoolExecutor(SUBMITTERS) as pool:
        return list(pool.map(submit, chosen))


def finished(database_url: str, uuids: list[str]) -> dict:
    """uuid -> finished_at (None while pending)."""
    engine = create_engine(database_url)
    found = {}
    with engine.connect() as connection:
        for start in range(0, len(uuids), 500):
            chunk = uuids[start : start + 500]
            query = text("SELECT uuid, finished_at FROM predictions WHERE uuid IN :uuids").bindparams(
                bindparam("uuids", expanding=True)
            )
            found.update(connection.execute(query, {"uuids": chunk}).all())
    engine.dispose()
    return found


def wait_finished(database_url: str, uuids: list[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        ends = finished(database_url, uuids)
        if all(ends.get(u) is not None for u in uuids):
            return ends
        if time.monotonic() > deadline:
            raise RuntimeError(f"{sum(ends.get(u) is None for u in uuids)} jobs still pending after {timeout} s")
        time.sleep(0.5)


def shares(ends_a: list, ends_b: list) -> tuple[float, float, int]:
    """Each client's share of the images finished while both had work left, and how many that was."""
    start = max(min(ends_a), min(ends_b))
    stop = min(max(ends_a), max(ends_b))
    a = sum(start <= end <= stop for end in ends_a)
    b = sum(start <= end <= stop for end in ends_b)
    return a / max(a + b, 1), b / max(a + b, 1), a + b


def singles(url: str, files: list[Path], count: int) -> list[float]:
    """POST to done of ``count`` single images, one after the other (every one must end done)."""
    latencies = []
    for path in itertools.islice(itertools.cycle(files), count):
        outcome = classify_one(url, path, 60)
        if outcome.status != "done":
            raise RuntimeError(f"a single image ended {outcome.status}: {outcome.get_body}")
        latencies.append(outcome.seconds)
    return latencies


def embedded(files: list[Path], flood: int) -> dict:
    from bench.throughput import idle_latency  # bench.throughput runs this module's rows too

    with tempfile.TemporaryDirectory() as instance:
        env = embedded_env(Path(instance))
        with running_make_run(env, Path(instance)) as (url, _):
            batch_client(url, files, 32, 16)  # warm-up
            idle = idle_latency(url)
            run = batch_client(url, files, flood, 16)
    return {"idle_s": idle, **run}


def on_rabbitmq(files: list[Path], bulk: int, single_count: int) -> dict:
    database_url = create_database("imgsvc_bench_fair")
    queue = f"inference-bench-{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as instance:
            env = deployment_env(Path(instance), database_url, queue)
            with running_make_run(env, Path(instance)) as (url, _):
                batch_client(url, files, 32, 16)  # warm-up
                idle = statistics.median(classify_one(url, files[0], 30).seconds for _ in range(5))
                backlog = queue_bulk(env, files, bulk, client="bench-a")
                latencies = singles(url, files, single_count)
                backlog_left = sum(end is None for end in finished(database_url, backlog).values())
                wait_finished(database_url, backlog, 1200)
                first = queue_bulk(env, files, bulk, client="bench-a")
                second = queue_bulk(env, files, bulk, client="bench-b")
                ends_a = list(wait_finished(database_url, first, 1200).values())
                ends_b = list(wait_finished(database_url, second, 1200).values())
        share_a, share_b, overlap = shares(ends_a, ends_b)
        return {
            "idle_s": idle,
            "singles": len(latencies),
            "p50": float(np.percentile(latencies, 50)),
            "p99": float(np.percentile(latencies, 99)),
            "backlog_left": backlog_left,
            "share_a": share_a,
            "share_b": share_b,
            "overlap_images": overlap,
        }
    finally:
        drop_database(database_url)
        delete_queues([queue])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulk", type=int, default=2000, help="images in each client's bulk backlog")
    parser.add_argument("--singles", type=int, default=40, help="single images posted during the backlog")
    parser.add_argument("--flood", type=int, default=1000, help="images the batch client sends on the embedded default")
    parser.add_argument("--skip", choices=("embedded", "rabbitmq"), action="append", default=[])
    args = parser.parse_args()
    from bench.throughput import image_files

    files = image_files()
    if "embedded" not in args.skip:
        result = embedded(files, args.flood)
        print(
            f"embedded default: idle image POST->done {result['idle_s'] * 1000:.0f} ms (median of 5); "
            f"batch client {result['images']} images: {result['rate']:.1f} images/s, "
            f"p50 {result['p50']:.2f} s, p99 {result['p99']:.2f} s, {result['not_done']} not done"
        )
    if "rabbitmq" not in args.skip:
        result = on_rabbitmq(files, args.bulk, args.singles)
        print(
            f"interactive during a {args.bulk}-image bulk backlog: {result['singles']} singles, "
            f"POST->done p50 {result['p50']:.3f} s, p99 {result['p99']:.3f} s (idle {result['idle_s']:.3f} s); "
            f"{result['backlog_left']} backlog images still queued after the last single"
        )
        print(
            f"two clients, {args.bulk} images each, B queued after A: while both had work, "
            f"A {result['share_a']:.2f}, B {result['share_b']:.2f} of {result['overlap_images']} images"
        )


if __name__ == "__main__":
    main()
