"""What the proxy costs and what it buys: CPU per request, and /health under slow clients.

    .venv/bin/python -m bench.proxy [--requests 2000] [--slow 64]

Gunicorn binds a TCP port here (WEB_BIND) so it can be reached both directly and through nginx.
1. ``--requests`` GETs of /health on one keep-alive connection, through the proxy and then
   directly: CPU seconds of the nginx processes and of Gunicorn's, and latency;
2. ``--slow`` connections that trickle their headers, first at the proxy, then straight at
   Gunicorn, while /health is probed for a few seconds: answers, and the slowest.
Needs MariaDB and RabbitMQ (TEST_MYSQL_URL, TEST_AMQP_URL).
"""

import argparse
import socket
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench.cpu import tree_cpu_seconds
from bench.throughput import percentile
from deploy.harness import create_database, delete_queues, deployment_env, drop_database, free_port, running_web


def cpu_per_request(url: str, count: int, groups: dict[str, int]) -> dict:
    """CPU seconds each group of processes (with their children) spent on ``count`` GETs of /health."""
    session = requests.Session()
    session.get(f"{url}/health", timeout=5)  # the connection is open before the clock starts
    before = {name: tree_cpu_seconds(pid) for name, pid in groups.items()}
    latencies = []
    for _ in range(count):
        began = time.perf_counter()
        assert session.get(f"{url}/health", timeout=5).status_code == 200
        latencies.append(time.perf_counter() - began)
    return {
        "cpu": {name: tree_cpu_seconds(pid) - before[name] for name, pid in groups.items()},
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
    }


def health_under_slow_clients(url: str, slow: int, seconds: float = 3.0) -> tuple[int, int, float]:
    """(probes answered 200, probes, slowest answer) while ``slow`` connections trickle headers."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    socks = [
        socket.create_connection((host, port), timeout=5, source_address=(f"127.0.5.{i + 1}", 0)) for i in range(slow)
    ]
    for sock in socks:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
    answered, probes, slowest = 0, 0, 0.0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            for sock in socks:
                try:
                    sock.sendall(b"a")
                except OSError:
                    pass  # closed by the server's timeout
            began = time.perf_counter()
            try:
                answered += requests.get(f"{url}/health", timeout=1).status_code == 200
            except requests.RequestException:
                pass
            probes += 1
            slowest = max(slowest, time.perf_counter() - began)
            time.sleep(0.05)
    finally:
        for sock in socks:
            sock.close()
    return answered, probes, slowest


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--slow", type=int, default=64)
    args = parser.parse_args()

    database_url = create_database("imgsvc_bench")
    queue = f"inference-bench-{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as instance:
            env = deployment_env(Path(instance), database_url, queue, WEB_BIND=f"127.0.0.1:{free_port()}")
            with running_web(env, Path(instance)) as (proxy_url, web, proxy):
                direct_url = f"http://{env['WEB_BIND']}"
                groups = {"nginx": proxy.popen.pid, "gunicorn": web.popen.pid}
                through = cpu_per_request(proxy_url, args.requests, groups)
                direct = cpu_per_request(direct_url, args.requests, groups)
                for label, result in (("through nginx", through), ("direct", direct)):
                    per_request = {
                        name: f"{seconds / args.requests * 1e6:.0f} µs" for name, seconds in result["cpu"].items()
                    }
                    print(
                        f"{args.requests} GET /health {label:13}: CPU per request {per_request}; "
                        f"latency p50 {result['p50'] * 1e3:.1f} ms, p99 {result['p99'] * 1e3:.1f} ms"
                    )
                # Direct last: it leaves Gunicorn stuck.
                for label, url in (("through nginx", proxy_url), ("direct", direct_url)):
                    answered, probes, slowest = health_under_slow_clients(url, args.slow)
                    print(
                        f"{args.slow} slow clients, /health {label:13}: {answered}/{probes} probes answered 200, "
                        f"slowest {slowest * 1e3:.0f} ms"
                    )
    finally:
        drop_database(database_url)
        delete_queues([queue])


if __name__ == "__main__":
    main()
