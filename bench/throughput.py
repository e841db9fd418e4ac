"""Throughput, latency, memory and CPU per request: the machine's limit, the deployed service, the
service as shipped (``make run``) and the naive worker, in one run.

    .venv/bin/python -m bench.throughput [--images 1000] [--clients 16] [--quick] [--profile] [--tracing]

1. limit: preprocessing + LiteRT inference in-process, 2 processes x 1 thread
   (and 1 process x 2 threads), no web, broker or database, with its CPU per image;
2. the deployed service (nginx + Gunicorn + Celery on MariaDB + RabbitMQ, batched LiteRT; the test
   harness's processes), flooded with POSTs, then GETs of finished jobs in a phase of their own;
   2b. its worker draining a queued backlog;
   as shipped: ``make run``'s processes (deploy.supervise and the Procfile: proxy, web, waiter, worker,
   webhooks worker, beat and Flower with task events on) driven by the batch client
   (``client.batch``), which POSTs from 16 threads and waits for each job with ``?wait=`` long polls;
   then polling without ``?wait=``: as Retry-After says, every 100 ms and every 50 ms;
   batch flood: the same processes under ``python -m client batch`` on 10,000 images
   (``bench.batch_flood``, which also runs alone);
3. the naive worker through the same deployed path (bench/naive_worker.py: one task and one
   ``model.predict`` per image, as the seed did);
   For each: images/s, POST latency flooded by the clients and paced at the measured
   throughput (workers saturated), and completion latency (row created → result committed);
4. one request on an idle service; 5. worker memory;
6. CPU time of each process group (bench/cpu.py) per POST, per GET and per image, against targets.
``--profile`` samples Gunicorn's workers with py-spy under a POST flood (JSON, then multipart) and a GET flood
(raw stacks in instance/profiles/). Needs MariaDB and RabbitMQ (TEST_MYSQL_URL, TEST_AMQP_URL)
and the model weights.
``--tracing`` adds, at the end as rows of their own, the CPU per image of the deployed service with tracing
off, on for every trace and on for 1% of them (``bench.tracing_cost``, which also runs alone).
"""

import argparse
import base64
import itertools
import multiprocessing
import os
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from sqlalchemy import create_engine, text

from bench import fairness, profile_web
from bench.as_shipped import batch_client, running_make_run
from bench.batch_flood import batch_flood
from bench.batch_flood import report as report_batch_flood
from bench.cpu import LOAD_GENERATOR, OTHER, SERVICE_GROUPS, CpuMeter, listener_pid
from bench.drain_backlog import drain_rate
from client.batch import post_image
from config.settings import PROJECT_ROOT
from deploy.harness import (
    AMQP_URL,
    MYSQL_SERVER_URL,
    create_database,
    delete_queues,
    deployment_env,
    drop_database,
    running_service,
)

IMAGES = PROJECT_ROOT.parent / "shared" / "images"
PROFILES = PROJECT_ROOT / "instance" / "profiles"
GROUPS = (*SERVICE_GROUPS, LOAD_GENERATOR, OTHER)
SERVICE = "service"  # every group but the load generator and the rest of the machine


def image_files() -> list[Path]:
    return sorted(IMAGES.glob("*.JPEG")) + sorted(p for p in (IMAGES / "samples").iterdir() if p.suffix != ".csv")


def percentile(values, q) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# --- 1. the limit -------------------------------------------------------------------------


def _limit_worker(args):
    model_path, labels, paths, batch_size, threads = args
    from ai_edge_litert.interpreter import Interpreter

    from models.preprocessing import INPUT_SIZE, prepare

    interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
    index_in = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index_in, [batch_size, *INPUT_SIZE, 3])
    interpreter.allocate_tensors()
    blobs = [p.read_bytes() for p in paths]
    start, cpu, images = time.perf_counter(), time.process_time(), 0
    for i in range(0, len(blobs) - batch_size + 1, batch_size):
        batch = np.stack([prepare(b) for b in blobs[i : i + batch_size]])
        interpreter.set_tensor(index_in, batch)
        interpreter.invoke()
        images += batch_size
    return time.perf_counter() - start, time.process_time() - cpu, images


def limit(model_path: Path, count: int, batch_size: int, processes: int, threads: int) -> dict:
    """Images/s of decode + preprocess + inference with ``processes`` x ``threads``, and CPU-ms per image."""
    paths = list(itertools.islice(itertools.cycle(image_files()), count))
    shards = [paths[i::processes] for i in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_limit_worker, [(model_path, None, shards[0][:batch_size], batch_size, threads)] * processes)
        start = time.perf_counter()
        results = pool.map(_limit_worker, [(model_path, None, shard, batch_size, threads) for shard in shards])
        elapsed = time.perf_counter() - start
    images = sum(result[2] for result in results)
    return {"rate": images / elapsed, "cpu_ms": sum(result[1] for result in results) / images * 1e3}


def measure_limits(quick: bool) -> dict:
    """The limit with 2 processes x 1 thread (batch 1, 8, 32) and 1 process x 2 threads (batch 32)."""
    from models.litert import convert, converted_path
    from models.weights import locate_model_files

    files = locate_model_files()
    limit_images = 416 if quick else 1040
    with tempfile.TemporaryDirectory() as cache:
        model_path = converted_path(files, Path(cache))
        convert(files, model_path)
        limits = {}
        for batch_size in (1, 8, 32):
            limits[f"2 processes x 1 thread, batch {batch_size}"] = limit(model_path, limit_images, batch_size, 2, 1)
        limits["1 process x 2 threads, batch 32"] = limit(model_path, limit_images, 32, 1, 2)
    return limits


def measured_limit(quick: bool) -> tuple[float, float]:
    """(the best limit in images/s, the CPU-ms per image of the model's own work at batch 1)."""
    limits = measure_limits(quick)
    return max(run["rate"] for run in limits.values()), limits["2 processes x 1 thread, batch 1"]["cpu_ms"]


# --- 2-5. the deployed service --------------------------------------------------------------


def image_bodies() -> list[str]:
    return [
        ('{"name": "%s", "data": "%s"}' % (p.name, base64.b64encode(p.read_bytes()).decode())) for p in image_files()
    ]


def load_test(base_url: str, database_url: str, count: int, clients: int, rate: float | None = None) -> dict:
    """POST ``count`` images from ``clients`` threads (as fast as answered, or at ``rate`` per second)
    and wait until every job is finished."""
    bodies = image_bodies()
    counter = itertools.count()
    lock = threading.Lock()
    post_latencies, uuids = [], []

    def client():
        session = requests.Session()
        while True:
            with lock:
                i = next(counter)
            if i >= count:
                return
            if rate:
                time.sleep(max(0.0, begin + i / rate - time.perf_counter()))
            start = time.perf_counter()
            response = session.post(
                f"{base_url}/inference/image",
                data=bodies[i % len(bodies)],
                headers={"Content-Type": "text/plain"},
                timeout=30,
            )
            elapsed = time.perf_counter() - start
            assert response.status_code == 202, response.text
            with lock:
                post_latencies.append(elapsed)
                uuids.append(response.json()["uuid"])

    engine = create_engine(database_url)
    with engine.connect() as connection:
        connection.execute(text("DELETE FROM predictions"))
        connection.commit()
    start = begin = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    posted = time.perf_counter() - start
    with engine.connect() as connection:
        while connection.execute(text("SELECT COUNT(*) FROM predictions WHERE status = 'pending'")).scalar():
            time.sleep(0.05)
            connection.rollback()
        done = time.perf_counter() - start
        rows = connection.execute(
            text("SELECT status, TIMESTAMPDIFF(MICROSECOND, created_at, updated_at) FROM predictions")
        ).all()
    engine.dispose()
    completion = [micros / 1e6 for status, micros in rows]
    return dict(
        images=len(uuids),
        seconds=done,
        posting_seconds=posted,
        rate=len(uuids) / done,
        uuids=uuids,
        not_done=sum(1 for status, _ in rows if status != "done"),
        post_p50=percentile(post_latencies, 50),
        post_p99=percentile(post_latencies, 99),
        done_p50=percentile(completion, 50),
        done_p99=percentile(completion, 99),
    )


def hammer(clients: int, send, count: int | None = None, stop: threading.Event | None = None) -> list[float]:
    """``send(session, i)`` from ``clients`` threads, ``count`` times in all or until ``stop`` is set;
    returns the latencies."""
    counter, lock, latencies = itertools.count(), threading.Lock(), []

    def client():
        session = requests.Session()
        while not (stop and stop.is_set()):
            with lock:
                i = next(counter)
            if count is not None and i >= count:
                return
            start = time.perf_counter()
            send(session, i)
            with lock:
                latencies.append(time.perf_counter() - start)

    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return latencies


def get_finished(base_url: str, uuids: list[str]):
    def send(session, i):
        response = session.get(f"{base_url}/predictions/{uuids[i % len(uuids)]}", timeout=30)
        assert response.status_code == 200, response.text

    return send


def post_images(base_url: str):
    bodies = image_bodies()

    def send(session, i):
        response = session.post(
            f"{base_url}/inference/image",
            data=bodies[i % len(bodies)],
            headers={"Content-Type": "text/plain"},
            timeout=30,
        )
        assert response.status_code == 202, response.text

    return send


def idle_latency(base_url: str, tries: int = 5) -> float:
    """Median time from POST to a done GET for one request on an otherwise idle service."""
    body = (
        '{"name": "e.jpg", "data": "%s"}'
        % base64.b64encode((IMAGES / "samples" / "elephant.jpg").read_bytes()).decode()
    )
    session = requests.Session()
    latencies = []
    for _ in range(tries):
        time.sleep(0.5)
        start = time.perf_counter()
        prediction_uuid = session.post(f"{base_url}/inference/image", data=body).json()["uuid"]
        while session.get(f"{base_url}/predictions/{prediction_uuid}").status_code == 202:
            time.sleep(0.002)
        latencies.append(time.perf_counter() - start)
    return statistics.median(latencies)


def worker_rss_mb(worker_pid: int) -> list[float]:
    """Resident size of the worker's main process and each pool process."""
    children = subprocess.run(["ps", "--ppid", str(worker_pid), "-o", "pid="], capture_output=True, text=True)
    pids = [worker_pid] + [int(p) for p in children.stdout.split()]
    sizes = []
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        sizes.append(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024)
    return sizes


def measured(meter: CpuMeter, run, *args, **kwargs):
    """``run(*args, **kwargs)`` and the CPU seconds each process group spent meanwhile."""
    before = meter.snapshot()
    result = run(*args, **kwargs)
    return result, meter.spent(before, meter.snapshot())


def deployed(
    label: str,
    count: int,
    clients: int,
    meter: CpuMeter,
    worker_app: str = "tasks.worker:celery_app",
    gets: int = 0,
    profile_seconds: int = 0,
    **settings,
) -> dict:
    database_url = create_database("imgsvc_bench")
    queue = f"inference-bench-{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as instance:
            env = deployment_env(Path(instance), database_url, queue, **settings)
            with running_service(env, Path(instance), worker_app=worker_app) as (base_url, web, worker):
                idle = idle_latency(base_url)
                memory = worker_rss_mb(worker.popen.pid)
                result, cpu = measured(meter, load_test, base_url, database_url, count, clients)
                get_phase = None
                if gets:  # GETs of finished jobs on their own, so their cost is not mixed with POSTs'
                    latencies, get_cpu = measured(
                        meter, hammer, clients, get_finished(base_url, result["uuids"]), count=gets
                    )
                    get_phase = {
                        "requests": gets,
                        "cpu": get_cpu,
                        "p50": percentile(latencies, 50),
                        "p99": percentile(latencies, 99),
                    }
                # POST latency while the workers are saturated: clients pace their requests at the
                # throughput just measured, so the queue never drains but the web is not flooded.
                paced = load_test(base_url, database_url, count // 2, clients, rate=result["rate"])
                multipart, files = None, image_files()
                if gets:  # the batch client's POST: multipart with an Idempotency-Key, not JSON and base64
                    _, multipart_cpu = measured(
                        meter,
                        hammer,
                        clients,
                        lambda session, i: post_image(session, base_url, files[i % len(files)]),
                        count=count // 2,
                    )
                    multipart = {"requests": count // 2, "cpu": multipart_cpu}
                profiles = None
                if profile_seconds:
                    workers = profile_web.children(web.popen.pid)
                    profiles = {
                        kind: profile_web.record(
                            workers,
                            profile_seconds,
                            PROFILES,
                            f"web-{kind}",
                            lambda stop, send=send: hammer(clients, send, stop=stop),
                        )
                        for kind, send in (
                            ("POST", post_images(base_url)),
                            ("POST-multipart", lambda session, i: post_image(session, base_url, files[i % len(files)])),
                            ("GET", get_finished(base_url, paced["uuids"])),
                        )
                    }
                return {
                    "label": label,
                    "idle": idle,
                    "memory": memory,
                    "cpu": cpu,
                    "gets": get_phase,
                    "multipart": multipart,
                    "profiles": profiles,
                    **result,
                    "paced_p50": paced["post_p50"],
                    "paced_p99": paced["post_p99"],
                }
    finally:
        drop_database(database_url)
        delete_queues([queue])


def as_shipped(count: int, clients: int, meter: CpuMeter, poll_images: int) -> dict:
    """``make run``'s processes under the batch client: as users run it, then two other ways of polling."""
    database_url = create_database("imgsvc_bench")
    queue = f"inference-bench-{uuid.uuid4().hex[:8]}"
    files = image_files()
    try:
        with tempfile.TemporaryDirectory() as instance:
            env = deployment_env(Path(instance), database_url, queue)
            with running_make_run(env, Path(instance)) as (url, _):
                batch_client(url, files, 2 * clients, clients)  # warm-up, as the idle requests warm up (2)
                runs = {"batch client (?wait= long polls)": measured(meter, batch_client, url, files, count, clients)}
                for mode, interval in (
                    ("poll, Retry-After honoured", None),
                    ("poll every 100 ms", 0.1),
                    ("poll every 50 ms", 0.05),
                ):
                    runs[mode] = measured(
                        meter, batch_client, url, files, poll_images, clients, interval, long_poll=False
                    )
                return {mode: {**result, "cpu": cpu} for mode, (result, cpu) in runs.items()}
    finally:
        drop_database(database_url)
        delete_queues([queue])


# --- 6. the report --------------------------------------------------------------------------


def per_image_ms(cpu: dict, images: int) -> dict:
    costs = {name: cpu.get(name, 0.0) / images * 1e3 for name in GROUPS}
    total = sum(costs.values())
    return {**costs, "total": total, SERVICE: total - costs[LOAD_GENERATOR] - costs[OTHER]}


def target(name: str, value: float, shown: str, bound: float, at_least: bool, unit: str = "") -> tuple:
    """A row of the targets table: the figure, its target and whether it is met."""
    met = value >= bound if at_least else value <= bound
    return name, shown, f"{'≥' if at_least else '≤'} {bound:g}{unit}", "yes" if met else "**no**"


def print_profile(kind: str, files: list[Path]) -> None:
    total, own, packages, inclusive = profile_web.summarize(files)
    print(
        f"\n    py-spy, Gunicorn workers under a {kind} flood: {total} samples "
        f"({', '.join(profile_web.relative(f) for f in files)})"
    )
    print("      top frames by own samples:")
    for frame, samples in own:
        print(f"        {samples / total:6.1%}  {frame}")
    print("      own samples by package: " + ", ".join(f"{name} {samples / total:.0%}" for name, samples in packages))
    print("      the project's frames by inclusive samples:")
    for frame, samples in inclusive:
        print(f"        {samples / total:6.1%}  {frame}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=None, help="images per flood (default 1000, --quick 300)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--naive-images", type=int, default=None, help="images for the naive worker (default --images)")
    parser.add_argument("--gets", type=int, default=None, help="GETs of finished jobs (default 2000, --quick 500)")
    parser.add_argument("--quick", action="store_true", help="a smaller run (about 2 minutes)")
    parser.add_argument(
        "--batch-images", type=int, default=None, help="images of the batch flood (default 10000, --quick 2000)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy each Gunicorn worker for 10 s under POST floods (JSON, multipart) and a GET flood "
        "(instance/profiles/)",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="also measure CPU per image with tracing off, on at 100%% and at 1%% (bench.tracing_cost)",
    )
    args = parser.parse_args()
    images = args.images or (300 if args.quick else 1000)
    naive_images = args.naive_images or (150 if args.quick else images)
    gets = args.gets or (500 if args.quick else 2000)
    poll_images = max(args.clients, images // 5)
    meter = CpuMeter({"MariaDB": listener_pid(MYSQL_SERVER_URL), "RabbitMQ": listener_pid(AMQP_URL)})

    limits = measure_limits(args.quick)
    best_limit = max(run["rate"] for run in limits.values())
    # The deployed worker classifies image by image with a one-thread interpreter in each of 2 processes.
    limit_cpu_ms = limits["2 processes x 1 thread, batch 1"]["cpu_ms"]

    service = deployed(
        "deployed: batched LiteRT, 2 processes",
        images,
        args.clients,
        meter,
        gets=gets,
        profile_seconds=10 if args.profile else 0,
    )
    # The deployed worker (2 processes) alone, no POSTs competing for the cores.
    backlog_rate = drain_rate(images, workers=1, concurrency=2)
    shipped_runs = as_shipped(images, args.clients, meter, poll_images)
    flood_images = args.batch_images or (2000 if args.quick else 10000)
    flood = batch_flood(flood_images, meter, image_files())
    embedded_flood = batch_flood(flood_images, meter, image_files(), embedded=True)
    shipped = next(iter(shipped_runs.values()))
    embedded_run, embedded_cpu = measured(meter, fairness.embedded, image_files(), images)
    sharing = fairness.on_rabbitmq(image_files(), bulk=4 * images, single_count=40)
    naive = deployed(
        "naive: task per image, Keras predict",
        naive_images,
        args.clients,
        meter,
        worker_app="bench.naive_worker:celery_app",
    )

    print("\n(1) limit, in-process decode + preprocess + LiteRT inference")
    for name, run in limits.items():
        print(f"    {name:<40} {run['rate']:8.1f} images/s  {run['cpu_ms']:5.1f} CPU-ms per image")
    print(
        f"\n{'':<42}{'images':>7}{'img/s':>7}{'POST p50/p99':>16}{'paced POST p50/p99':>20}"
        f"{'done p50/p99':>16}{'idle 1 req':>12}  worker RSS MB (main, pool...)"
    )
    for number, run in (("(2)", service), ("(3)", naive)):
        print(
            f"{number} {run['label']:<38}{run['images']:>7}{run['rate']:>7.1f}"
            f"{run['post_p50'] * 1e3:>8.0f}/{run['post_p99'] * 1e3:.0f}ms"
            f"{run['paced_p50'] * 1e3:>12.0f}/{run['paced_p99'] * 1e3:.0f}ms"
            f"{run['done_p50'] * 1e3:>9.0f}/{run['done_p99'] * 1e3:.0f}ms"
            f"{run['idle'] * 1e3:>10.0f}ms  {', '.join(f'{m:.0f}' for m in run['memory'])}"
        )
        if run["not_done"]:
            print(f"    !! {run['not_done']} jobs did not end done")
    print("\nWhere the cores went during each flood (CPU seconds, share of all cores' time):")
    for number, run in (("(2)", service), ("(3)", naive)):
        budget = os.cpu_count() * run["seconds"]
        shares = ", ".join(
            f"{name} {seconds:.1f}s ({seconds / budget:.0%})"
            for name, seconds in run["cpu"].items()
            if abs(seconds) >= 0.05
        )
        print(f"    {number} {shares}, idle {budget - sum(run['cpu'].values()):.1f}s")
    print(
        f"\n(2b) the deployed worker draining {images} queued jobs, no POSTs competing: "
        f"{backlog_rate:.1f} images/s = {backlog_rate / best_limit:.2f} of the limit"
    )

    print(
        f"\nas shipped: make run's processes (deploy.supervise and the Procfile; Flower with events on), "
        f"{args.clients} client threads, each POSTing an image and waiting for it until done:"
    )
    get_ms = service["gets"]["cpu"]["Gunicorn"] / service["gets"]["requests"] * 1e3
    for mode, run in shipped_runs.items():
        gets = run["gets"] / run["images"]
        polling = "" if mode == next(iter(shipped_runs)) else f" = {gets * get_ms:.2f} web CPU-ms of polling"
        print(
            f"    {mode:<44} {run['images']:>5} images {run['rate']:6.1f} img/s = {run['rate'] / best_limit:.2f}"
            f" of the limit; job p50/p99 {run['p50'] * 1e3:.0f}/{run['p99'] * 1e3:.0f} ms; {gets:.1f} GETs per "
            f"image{polling}; CPU-ms per image: web {run['cpu']['Gunicorn'] / run['images'] * 1e3:.2f}, waiter "
            f"{run['cpu'].get('waiter', 0.0) / run['images'] * 1e3:.2f}, nginx "
            f"{run['cpu']['nginx'] / run['images'] * 1e3:.2f}"
            + (f"; !! {run['not_done']} not done" if run["not_done"] else "")
        )
    print(
        f"    the same per-image client on the embedded default (SQLite, embedded broker): {embedded_run['images']} "
        f"images {embedded_run['rate']:.1f} img/s = {embedded_run['rate'] / shipped['rate']:.2f} of as shipped; "
        f"idle image POST->done {embedded_run['idle_s'] * 1e3:.0f} ms (target <= 100)"
        + (f"; !! {embedded_run['not_done']} not done" if embedded_run["not_done"] else "")
    )
    print(
        f"fair sharing (bench/fairness.py, make run's processes on MariaDB and RabbitMQ): {sharing['singles']} single "
        f"images while a {4 * images}-image bulk backlog drains: POST->done p50 {sharing['p50'] * 1e3:.0f} ms, p99 "
        f"{sharing['p99'] * 1e3:.0f} ms (target <= 1000); two bulk clients, B queued after A, while both had work: "
        f"A {sharing['share_a']:.2f}, B {sharing['share_b']:.2f} (target >= 0.33 each)"
    )

    report_batch_flood(flood, best_limit, limit_cpu_ms)
    report_batch_flood(embedded_flood, best_limit, limit_cpu_ms)
    print(f"embedded default / as shipped, batch flood: {embedded_flood['rate'] / flood['rate']:.2f} (target >= 0.5)")

    rows = {
        "(2) deployed": (service, service["images"]),
        "embedded": ({**embedded_run, "cpu": embedded_cpu}, embedded_run["images"]),
        "as shipped": (shipped, shipped["images"]),
        "(3) naive": (naive, naive["images"]),
    }
    per_image = {name: per_image_ms(run["cpu"], count) for name, (run, count) in rows.items()}
    post_ms = per_image["(2) deployed"]["Gunicorn"]
    nginx_get_ms = service["gets"]["cpu"]["nginx"] / service["gets"]["requests"] * 1e3
    worker_ms = per_image["(2) deployed"]["worker"]
    shipped_worker_ms = per_image["as shipped"]["worker"]
    print(
        '\nCPU-ms per image by process group during each flood (from /proc; "other" is the rest of this '
        "shared machine):"
    )
    widths = {name: max(10, len(name) + 2) for name in (*GROUPS, "total", SERVICE)}
    print(f"    {'':<14}" + "".join(f"{name:>{width}}" for name, width in widths.items()))
    for name, costs in per_image.items():
        print(f"    {name:<14}" + "".join(f"{costs[group]:>{width}.2f}" for group, width in widths.items()))
    # Other work on a shared machine takes cores from a flood but not from the limit measured before it;
    # CPU per image does not depend on it: cores / CPU-ms per image is the rate with every core to itself.
    projected = {name: limit_cpu_ms / costs[SERVICE] for name, costs in per_image.items()}
    print(
        f"CPU-projected, with all {os.cpu_count()} cores to itself ({os.cpu_count()} cores / service CPU per image): "
        f"limit {os.cpu_count() * 1e3 / limit_cpu_ms:.0f} images/s; "
        + ", ".join(
            f"{name} {os.cpu_count() * 1e3 / per_image[name][SERVICE]:.0f} = {ratio:.2f} of it"
            for name, ratio in projected.items()
        )
    )
    for name, (run, _) in rows.items():
        busy_elsewhere = run["cpu"][OTHER] / (os.cpu_count() * run["seconds"])
        if busy_elsewhere > 0.1:
            print(
                f"    !! other processes on this machine took {busy_elsewhere:.0%} of the cores during {name}: "
                "its images/s and ratios to the limit understate the service; the CPU-projected ones do not"
            )
    print(
        f"\nweb (Gunicorn): {post_ms:.2f} CPU-ms per POST (the (2) flood), {get_ms:.2f} per GET "
        f"({service['gets']['requests']} GETs of finished jobs from {args.clients} threads, latency "
        f"p50/p99 {service['gets']['p50'] * 1e3:.1f}/{service['gets']['p99'] * 1e3:.1f} ms); nginx "
        f"{per_image['(2) deployed']['nginx']:.2f} per POST, {nginx_get_ms:.2f} per GET"
    )
    multipart_ms = service["multipart"]["cpu"]["Gunicorn"] / service["multipart"]["requests"] * 1e3
    print(
        f"    the batch client's POST (multipart, Idempotency-Key; {service['multipart']['requests']} from "
        f"{args.clients} threads): {multipart_ms:.2f} CPU-ms per POST in Gunicorn"
    )
    print(
        f"worker: {worker_ms:.2f} CPU-ms per image deployed, {shipped_worker_ms:.2f} as shipped (task events on); "
        f"the limit {limit_cpu_ms:.2f} (2 processes x 1 thread, batch 1) → overhead "
        f"{worker_ms - limit_cpu_ms:.2f} deployed, {shipped_worker_ms - limit_cpu_ms:.2f} as shipped"
    )

    if service["profiles"]:
        for kind, profile_files in service["profiles"].items():
            print_profile(kind, profile_files)

    ratios = {
        "deployed/limit": service["rate"] / best_limit,
        "as shipped/limit": shipped["rate"] / best_limit,
        "deployed/naive": service["rate"] / naive["rate"],
    }
    print(
        f"\n(2)/(1) = {ratios['deployed/limit']:.2f}    as shipped/(1) = {ratios['as shipped/limit']:.2f}    "
        f"(2)/(3) = {ratios['deployed/naive']:.1f}"
    )

    overhead = worker_ms - limit_cpu_ms
    targets = [
        target("deployed / limit", ratios["deployed/limit"], f"{ratios['deployed/limit']:.2f}", 0.6, True),
        target("as shipped / limit", ratios["as shipped/limit"], f"{ratios['as shipped/limit']:.2f}", 0.5, True),
        target(
            "deployed / limit, CPU-projected", projected["(2) deployed"], f"{projected['(2) deployed']:.2f}", 0.6, True
        ),
        target(
            "as shipped / limit, CPU-projected", projected["as shipped"], f"{projected['as shipped']:.2f}", 0.5, True
        ),
        target("deployed / naive", ratios["deployed/naive"], f"{ratios['deployed/naive']:.1f}", 8, True),
        target("web CPU per POST, JSON + base64", post_ms, f"{post_ms:.2f} ms", 2, False, " ms"),
        target(
            "web CPU per POST, multipart (the batch client's)", multipart_ms, f"{multipart_ms:.2f} ms", 2, False, " ms"
        ),
        target("web CPU per GET", get_ms, f"{get_ms:.2f} ms", 0.5, False, " ms"),
        target(
            "worker overhead per image (worker − limit CPU)",
            overhead,
            f"{worker_ms:.2f} − {limit_cpu_ms:.2f} = {overhead:.2f} ms",
            1,
            False,
            " ms",
        ),
        target(
            "POST p99, workers saturated (paced)",
            service["paced_p99"] * 1e3,
            f"{service['paced_p99'] * 1e3:.0f} ms",
            50,
            False,
            " ms",
        ),
        target("idle single request", service["idle"] * 1e3, f"{service['idle'] * 1e3:.0f} ms", 50, False, " ms"),
    ]
    print("\n--- markdown for docs/performance.md ---\n")
    print(
        "| | images/s | of the limit | POST p50/p99 (flood) | POST p50/p99 (paced, workers saturated) "
        "| completion p50/p99 | idle request | RSS per pool process |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rates = " / ".join(f"{limits[f'2 processes x 1 thread, batch {b}']['rate']:.0f}" for b in (1, 8, 32))
    print(f"| (1) limit, 2 processes x 1 thread, batch 1 / 8 / 32 | {rates} | | | | | | |")
    print(
        f"| (1) limit, 1 process x 2 threads, batch 32 | {limits['1 process x 2 threads, batch 32']['rate']:.0f} "
        "| | | | | | |"
    )
    for run in (service, naive):
        print(
            f"| {'(2)' if run is service else '(3)'} {run['label']} | {run['rate']:.1f} | "
            f"{run['rate'] / best_limit:.2f} | {run['post_p50'] * 1e3:.0f} / {run['post_p99'] * 1e3:.0f} ms | "
            f"{run['paced_p50'] * 1e3:.0f} / {run['paced_p99'] * 1e3:.0f} ms | {run['done_p50']:.1f} / "
            f"{run['done_p99']:.1f} s | {run['idle'] * 1e3:.0f} ms | "
            f"{', '.join(f'{m:.0f}' for m in run['memory'][1:])} MB |"
        )
        if run is service:
            print(
                f"| (2b) the same worker draining {images} queued jobs | {backlog_rate:.0f} | "
                f"{backlog_rate / best_limit:.2f} | | | | | |"
            )
            for mode, shipped_run in shipped_runs.items():
                print(
                    f"| as shipped (`make run`), {mode} | {shipped_run['rate']:.1f} | "
                    f"{shipped_run['rate'] / best_limit:.2f} | | | job {shipped_run['p50']:.2f} / "
                    f"{shipped_run['p99']:.2f} s | | |"
                )
    print('\nCPU-ms per image by process group during each flood ("other": the rest of the machine):\n')
    print("| | " + " | ".join(widths) + " |")
    print("|---" * (len(widths) + 1) + "|")
    for name, costs in per_image.items():
        print(f"| {name} | " + " | ".join(f"{costs[group]:.2f}" for group in widths) + " |")
    print("\n| figure | measured | target | met |")
    print("|---|---|---|---|")
    for row in targets:
        print("| " + " | ".join(row) + " |")
    print(
        f"| waiting, as shipped (batch client) | {shipped['gets'] / shipped['images']:.1f} GETs per image, "
        f"waiter {shipped['cpu'].get('waiter', 0.0) / shipped['images'] * 1e3:.2f} CPU-ms per image | | |"
    )
    if args.tracing:
        # Imported here, not at the top: bench.tracing_cost takes its image bodies from this module.
        from bench import tracing_cost

        print("\nTracing's cost (bench.tracing_cost):")
        tracing_cost.report(100 if args.quick else tracing_cost.IMAGES, tracing_cost.CLIENTS)


if __name__ == "__main__":
    main()
