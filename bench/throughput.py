"""Throughput, latency and memory: the machine's limit, the deployed service and the naive worker, in one run.

    .venv/bin/python -m bench.throughput [--images 1000] [--clients 16]

1. limit: preprocessing + LiteRT inference in-process, 2 processes x 1 thread
   (and 1 process x 2 threads), no web, broker or database;
2. the deployed service (Gunicorn + Celery on MariaDB + RabbitMQ, batched LiteRT);
3. the naive worker through the same deployed path (bench/naive_worker.py: one task and one
   ``model.predict`` per image, as the seed did);
   For each: images/s, POST latency flooded by the clients and paced at the measured
   throughput (workers saturated), and completion latency (row created → result committed);
4. one request on an idle service; 5. worker memory.
Needs MariaDB and RabbitMQ (TEST_MYSQL_URL, TEST_AMQP_URL) and the model weights.
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

from bench.drain_backlog import drain_rate
from config.settings import PROJECT_ROOT
from deploy.harness import create_database, delete_queues, deployment_env, drop_database, running_service

IMAGES = PROJECT_ROOT.parent / "shared" / "images"


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
    start = time.perf_counter()
    for i in range(0, len(blobs) - batch_size + 1, batch_size):
        batch = np.stack([prepare(b) for b in blobs[i:i + batch_size]])
        interpreter.set_tensor(index_in, batch)
        interpreter.invoke()
    return time.perf_counter() - start


def limit(model_path: Path, count: int, batch_size: int, processes: int, threads: int) -> float:
    """Images/s of decode + preprocess + inference with ``processes`` x ``threads``."""
    paths = list(itertools.islice(itertools.cycle(image_files()), count))
    shards = [paths[i::processes] for i in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_limit_worker, [(model_path, None, shards[0][:batch_size], batch_size, threads)] * processes)
        start = time.perf_counter()
        pool.map(_limit_worker, [(model_path, None, shard, batch_size, threads) for shard in shards])
        elapsed = time.perf_counter() - start
    return (len(paths) // batch_size * batch_size) / elapsed


# --- 2-5. the deployed service --------------------------------------------------------------

def load_test(base_url: str, database_url: str, count: int, clients: int, rate: float | None = None) -> dict:
    """POST ``count`` images from ``clients`` threads (as fast as answered, or at ``rate`` per second)
    and wait until every job is finished."""
    files = image_files()
    bodies = [('{"name": "%s", "data": "%s"}' % (p.name, base64.b64encode(p.read_bytes()).decode()))
              for p in files]
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
            response = session.post(f"{base_url}/inference/image", data=bodies[i % len(bodies)],
                                    headers={"Content-Type": "text/plain"}, timeout=30)
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
        rows = connection.execute(text(
            "SELECT status, TIMESTAMPDIFF(MICROSECOND, created_at, updated_at) FROM predictions")).all()
    engine.dispose()
    completion = [micros / 1e6 for status, micros in rows]
    return dict(
        images=len(uuids), seconds=done, posting_seconds=posted, rate=len(uuids) / done,
        not_done=sum(1 for status, _ in rows if status != "done"),
        post_p50=percentile(post_latencies, 50), post_p99=percentile(post_latencies, 99),
        done_p50=percentile(completion, 50), done_p99=percentile(completion, 99),
    )


def idle_latency(base_url: str, tries: int = 5) -> float:
    """Median time from POST to a done GET for one request on an otherwise idle service."""
    body = '{"name": "e.jpg", "data": "%s"}' % base64.b64encode(
        (IMAGES / "samples" / "elephant.jpg").read_bytes()).decode()
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


def cpu_seconds(pids: list[int], children: bool = True) -> float:
    """User + system CPU time of these processes and (by default) their child processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        tree = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
        for member in [pid, *map(int, tree if children else [])]:
            try:
                fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def machine_busy_seconds() -> float:
    """CPU time all cores spent on anything but idle and I/O wait, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def pids_of(name: str) -> list[int]:
    return [int(p) for p in subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()]


def deployed(label: str, count: int, clients: int, worker_app: str = "tasks.worker:celery_app", **settings) -> dict:
    database_url = create_database("imgsvc_bench")
    queue = f"inference-bench-{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as instance:
            env = deployment_env(Path(instance), database_url, queue, **settings)
            with running_service(env, Path(instance), worker_app=worker_app) as (base_url, web, worker):
                idle = idle_latency(base_url)
                memory = worker_rss_mb(worker.popen.pid)
                groups = {"worker": [worker.popen.pid], "web": [web.popen.pid], "MariaDB": pids_of("mariadbd"),
                          "RabbitMQ": pids_of("beam.smp"), "load generator": [os.getpid()]}
                def cpu_now():  # this process's children are the web and the worker, counted apart
                    usage = {name: cpu_seconds(pids, children=name != "load generator")
                             for name, pids in groups.items()}
                    return {**usage, "other processes": machine_busy_seconds() - sum(usage.values())}

                before = cpu_now()
                result = load_test(base_url, database_url, count, clients)
                cpu = {name: seconds - before[name] for name, seconds in cpu_now().items()}
                # POST latency while the workers are saturated: clients pace their requests at the
                # throughput just measured, so the queue never drains but the web is not flooded.
                paced = load_test(base_url, database_url, count // 2, clients, rate=result["rate"])
                return {"label": label, "idle": idle, "memory": memory, "cpu": cpu, **result,
                        "paced_p50": paced["post_p50"], "paced_p99": paced["post_p99"]}
    finally:
        drop_database(database_url)
        delete_queues([queue])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--naive-images", type=int, default=None, help="images for the naive worker (default --images)")
    args = parser.parse_args()

    from models.litert import convert, converted_path
    from models.weights import locate_model_files

    files = locate_model_files()
    with tempfile.TemporaryDirectory() as cache:
        model_path = converted_path(files, Path(cache))
        convert(files, model_path)
        limits = {}
        for batch_size in (1, 8, 32):
            limits[f"2 processes x 1 thread, batch {batch_size}"] = limit(model_path, 1040, batch_size, 2, 1)
        limits["1 process x 2 threads, batch 32"] = limit(model_path, 1040, 32, 1, 2)
    best_limit = max(limits.values())

    service = deployed("deployed: batched LiteRT, 2 processes", args.images, args.clients)
    # The deployed worker (2 processes) alone, no POSTs competing for the cores.
    backlog_rate = drain_rate(args.images, workers=1, concurrency=2)
    naive = deployed("naive: task per image, Keras predict", args.naive_images or args.images, args.clients,
                     worker_app="bench.naive_worker:celery_app")

    print("\n(1) limit, in-process decode + preprocess + LiteRT inference")
    for name, rate in limits.items():
        print(f"    {name:<40} {rate:8.1f} images/s")
    print(f"\n{'':<42}{'images':>7}{'img/s':>7}{'POST p50/p99':>16}{'paced POST p50/p99':>20}"
          f"{'done p50/p99':>16}{'idle 1 req':>12}  worker RSS MB (main, pool...)")
    for number, run in (("(2)", service), ("(3)", naive)):
        print(f"{number} {run['label']:<38}{run['images']:>7}{run['rate']:>7.1f}"
              f"{run['post_p50'] * 1e3:>8.0f}/{run['post_p99'] * 1e3:.0f}ms"
              f"{run['paced_p50'] * 1e3:>12.0f}/{run['paced_p99'] * 1e3:.0f}ms"
              f"{run['done_p50'] * 1e3:>9.0f}/{run['done_p99'] * 1e3:.0f}ms"
              f"{run['idle'] * 1e3:>10.0f}ms  {', '.join(f'{m:.0f}' for m in run['memory'])}")
        if run["not_done"]:
            print(f"    !! {run['not_done']} jobs did not end done")
    print("\nWhere the cores went during each flood (CPU seconds, share of all cores' time):")
    for number, run in (("(2)", service), ("(3)", naive)):
        budget = os.cpu_count() * run["seconds"]
        shares = ", ".join(f"{name} {seconds:.1f}s ({seconds / budget:.0%})" for name, seconds in run["cpu"].items())
        print(f"    {number} {shares}, idle {budget - sum(run['cpu'].values()):.1f}s")
    print(f"\n(2b) the deployed worker draining {args.images} queued jobs, no POSTs competing: "
          f"{backlog_rate:.1f} images/s = {backlog_rate / best_limit:.2f} of the limit")
    print(f"\n(2)/(1) = {service['rate'] / best_limit:.2f}    (2)/(3) = {service['rate'] / naive['rate']:.1f}")


if __name__ == "__main__":
    main()
