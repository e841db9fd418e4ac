"""CPU per image of the deployed service with tracing off, on for every trace, and on for 1% of them.

    .venv/bin/python -m bench.tracing_cost [--images 300] [--clients 8]

Each run starts the test harness's deployment (nginx, Gunicorn, one Celery worker on MariaDB and
RabbitMQ) on a database and queue of its own, POSTs the images and waits until every job is done,
then reports the CPU seconds Gunicorn and the worker spent per image (bench/cpu.py). With tracing on,
spans go over OTLP/HTTP to a sink in this process that reads and discards them.
"""

import argparse
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from bench.cpu import CpuMeter, listener_pid
from bench.throughput import image_bodies
from deploy.harness import (
    AMQP_URL,
    MYSQL_SERVER_URL,
    create_database,
    delete_queues,
    deployment_env,
    drop_database,
    running_service,
)

WARM_UP = 20
IMAGES, CLIENTS = 300, 8
DONE_TIMEOUT = 600
RUNS = (
    ("tracing off", {}),
    ("tracing on, 100%", {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"}),
    ("tracing on, 1%", {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}),
)


def span_sink() -> tuple[ThreadingHTTPServer, str]:
    """An OTLP/HTTP endpoint that accepts every export and keeps nothing."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def post_all(base_url: str, count: int, clients: int) -> None:
    bodies = image_bodies()

    def send(i):
        response = requests.post(
            f"{base_url}/inference/image",
            data=bodies[i % len(bodies)],
            headers={"Content-Type": "text/plain"},
            timeout=30,
        )
        assert response.status_code == 202, response.text

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, range(count)))


def wait_until_done(database_url: str, count: int) -> None:
    engine = create_engine(database_url)
    deadline = time.monotonic() + DONE_TIMEOUT
    try:
        while True:
            with engine.connect() as connection:
                done = connection.execute(text("SELECT COUNT(*) FROM predictions WHERE status != 'pending'")).scalar()
            if done >= count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done} of {count} jobs ended")
            time.sleep(0.2)
    finally:
        engine.dispose()


def cpu_per_image(otel: dict, images: int, clients: int, sink_url: str) -> dict[str, float]:
    queue = f"bench-tracing-{int(time.time() * 1000)}"
    database_url = create_database("imgsvc_bench")
    env_extra = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, **otel} if otel else {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            instance = Path(folder)
            env = deployment_env(instance / "instance", database_url, queue, **env_extra)
            if not otel:
                env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
            (instance / "logs").mkdir()
            with running_service(env, instance / "logs") as (url, _, _):
                post_all(url, WARM_UP, clients)
                wait_until_done(database_url, WARM_UP)
                meter = CpuMeter({"MariaDB": listener_pid(MYSQL_SERVER_URL), "RabbitMQ": listener_pid(AMQP_URL)})
                before = meter.snapshot()
                post_all(url, images, clients)
                wait_until_done(database_url, WARM_UP + images)
                spent = meter.spent(before, meter.snapshot())
    finally:
        drop_database(database_url)
        delete_queues([queue])
    return {group: spent.get(group, 0.0) * 1000 / images for group in ("Gunicorn", "worker", "nginx")}


def report(images: int = IMAGES, clients: int = CLIENTS) -> None:
    """Run the three deployments and print one row of CPU ms per image for each (``bench.throughput
    --tracing`` prints the same rows)."""
    sink, sink_url = span_sink()
    try:
        print(f"CPU ms per image ({images} images, {clients} clients):")
        print(f"{'':18} {'web':>7} {'worker':>7} {'nginx':>7} {'total':>7}")
        for label, otel in RUNS:
            cost = cpu_per_image(otel, images, clients, sink_url)
            total = sum(cost.values())
            print(f"{label:18} {cost['Gunicorn']:7.2f} {cost['worker']:7.2f} {cost['nginx']:7.2f} {total:7.2f}")
    finally:
        sink.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=IMAGES)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    arguments = parser.parse_args()
    report(arguments.images, arguments.clients)


if __name__ == "__main__":
    main()
