"""The parts of a deployment spread over test hosts (network namespaces), and how a web or worker host starts."""

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from deploy.harness import STARTUP_TIMEOUT, Process
from deploy.netns import Host, Network
from tests.support.servers import MariaDB, RabbitMQ

WORKER_METRICS_PORT = 9808
# Seconds between AMQP heartbeats for the workers: RabbitMQ declares a silent worker dead after about
# two periods and hands its unacked jobs to the others, and the worker notices it lost the broker as
# fast. Production keeps the default (RabbitMQ's 60 s), where a vanished host's jobs wait ~2 minutes.
WORKER_HEARTBEAT = 2
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class Services:
    host: Host
    mariadb: MariaDB
    rabbitmq: RabbitMQ
    s3_url: str


@dataclass
class Worker:
    host: Host
    process: Process
    env: dict

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host.address}:{self.env['WORKER_METRICS_PORT']}/metrics"


@dataclass
class Deployment:
    network: Network
    services: Services
    web: Host
    entry_url: str
    env: dict  # what every host shares: database, broker, queue, image store
    workers: dict = field(default_factory=dict)
    log_dir: Path | None = None


@dataclass
class Web:
    """The proxy (nginx) on the web host's address, in front of Gunicorn on a unix socket, as the Procfile runs them."""

    gunicorn: Process
    proxy: Process
    url: str

    def stop(self) -> None:
        self.proxy.stop()
        self.gunicorn.stop()


def start_web(host: Host, env: dict, folder: Path, port: int = 5000) -> Web:
    """The web on ``host``, once /health answers 200 through the proxy; its files and logs go in ``folder``."""
    env = {**env, "WEB_BIND": f"unix:{folder / 'web.sock'}"}
    gunicorn = Process(
        host.command([sys.executable, "-m", "gunicorn", "--bind", env["WEB_BIND"], "--workers", "2", "wsgi:app"]),
        env,
        folder / "web.log",
    )
    proxy = Process(
        host.command([sys.executable, "-m", "deploy.proxy"]),
        {**env, "PROXY_BIND": host.address, "PORT": str(port), "INSTANCE_PATH": str(folder)},
        folder / "proxy.log",
    )
    web = Web(gunicorn, proxy, f"http://{host.address}:{port}")
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            if requests.get(f"{web.url}/health", timeout=2).status_code == 200:
                return web
        except requests.RequestException:  # not listening yet, or busy starting
            pass
        if time.monotonic() > deadline or gunicorn.popen.poll() is not None or proxy.popen.poll() is not None:
            web.stop()
            raise RuntimeError(f"web on {web.url} not healthy:\n{gunicorn.output()[-2000:]}\n{proxy.output()[-2000:]}")
        time.sleep(0.2)


def worker_env(env: dict, host: Host, disk: Path, **settings) -> dict:
    """A worker host's settings: the shared ones, plus its own disk (instance, model cache) and metrics."""
    return {
        **env,
        "INSTANCE_PATH": str(disk),
        "MODEL_CACHE_DIR": str(disk / "model-cache"),
        "WORKER_METRICS_PORT": str(WORKER_METRICS_PORT),
        "WORKER_METRICS_BIND": host.address,
        "BROKER_HEARTBEAT": str(WORKER_HEARTBEAT),
        **settings,
    }
