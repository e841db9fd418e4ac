"""Every setting of the service, read once from the environment, in one frozen ``Settings`` value.

Each setting has one name: the environment variable and the attribute here are the same.
Entry points (``wsgi.py``, ``tasks/worker.py``, ``tasks/webhook_worker.py``, ``webapp/waiter.py``,
``deploy/proxy.py``, ``gunicorn.conf.py``) call ``load_settings()``; the app factories take the
value they are given (``create_app(settings)``), and code reads it back with ``current_settings()``.
Celery's own option names are derived from it in ``celeryconfig.py``; ``app.config`` holds only
what Flask and its extensions read.

A malformed value stops the process at start with a ``SettingsError`` that names the variable,
its value and what it expects.

The defaults give the embedded setup (SQLite, a filesystem broker and a local
image directory under ``instance/``), so a fresh clone runs with no
configuration. Real services are chosen by setting the URLs.
"""

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv
from flask import current_app

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Measured by `python -m bench.decode_budget`: the worst image these admit decodes in at most
# 0.4 s of CPU and ~100 MB of peak memory. 4096x3072 (12.6 MP) takes a 4032x3024 phone photo;
# at that size an RGBA PNG or TIFF and a 4:4:4 CMYK progressive JPEG peak at ~100 MB.
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 3072
# libjpeg walks every coefficient block once per scan (about 4 ms a scan at 12.6 MP: 0.33 s for
# 64); encoders write a dozen or so.
DEFAULT_MAX_JPEG_SCANS = 64
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    INSTANCE_PATH: Path
    DATABASE_URL: str
    CELERY_BROKER_URL: str
    CELERY_QUEUE: str
    IMAGE_STORE_URL: str
    S3_ENDPOINT_URL: str
    S3_CREATE_BUCKET: bool
    MAX_IMAGE_BYTES: int
    MAX_IMAGE_PIXELS: int
    MAX_JPEG_SCANS: int
    BATCH_MAX_IMAGES: int
    BATCH_MAX_BYTES: int
    MODEL_WEIGHTS_PATH: str
    MODEL_RUNTIME: str
    MODEL_CACHE_DIR: Path
    REPUBLISH_PENDING_AFTER: int
    MAX_DELIVERIES: int
    BATCH_MAX_SIZE: int
    BATCH_MAX_WAIT: float
    WORKER_NICENESS: int
    API_KEYS: tuple[str, ...]
    METRICS_KEY: str
    RATE_LIMIT: str
    RATE_LIMIT_STORAGE_URL: str
    IDEMPOTENCY_TTL_SECONDS: int
    RETENTION_DAYS: int | None
    ORPHAN_GRACE_SECONDS: int
    WORKER_METRICS_PORT: int | None
    WORKER_METRICS_BIND: str
    BROKER_HEARTBEAT: int
    WAITER_PORT: int
    WAITER_URL: str
    WEBHOOK_SECRET: str
    WEBHOOK_ALLOWED_HOSTS: tuple[str, ...]
    WEBHOOK_ALLOW_PRIVATE: bool
    WEBHOOK_RETRY_SECONDS: int
    WEBHOOK_FIRST_RETRY: float
    LOG_LEVEL: str
    # Processes (the Procfile's shell defaults repeat these; tests/unit/test_procfile.py compares them)
    PORT: int
    WEB_BIND: str
    WEB_CONCURRENCY: int
    WEB_THREADS: int
    WORKER_CONCURRENCY: int
    WEBHOOK_CONCURRENCY: int
    FLOWER_PORT: int
    # The proxy (deploy/proxy.py renders them into deploy/nginx/*.conf.template)
    PROXY_BIND: str
    PROXY_HEADER_TIMEOUT: int
    PROXY_BODY_TIMEOUT: int
    PROXY_SEND_TIMEOUT: int
    PROXY_KEEPALIVE_TIMEOUT: int
    PROXY_READ_TIMEOUT: int
    PROXY_CONNECTIONS_PER_CLIENT: int
    PROXY_WAITER_UPSTREAM: str
    WEBHOOK_CONNECT_TIMEOUT: float
    WEBHOOK_ATTEMPT_TIMEOUT: float
    WEBHOOK_PER_DESTINATION: int

    @property
    def broker_folder(self) -> Path:
        """Where the embedded filesystem broker keeps its messages."""
        return self.INSTANCE_PATH / "broker"

    @property
    def max_request_bytes(self) -> int:
        """The largest request body: a base64 image (4/3 of its bytes) plus room for the JSON around it.

        The app (``MAX_CONTENT_LENGTH``) and the proxy (``client_max_body_size``) both use it.
        """
        return self.MAX_IMAGE_BYTES * 4 // 3 + 64 * 1024

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


class SettingsError(ValueError):
    """A setting's value that cannot be used; the message names the variable, the value and what it expects."""

    def __init__(self, name: str, raw: str, expected: str):
        super().__init__(f"{name}={raw!r} is not valid: expected {expected}")


def current_settings() -> Settings:
    """The settings of the app serving this request or running this task."""
    return current_app.extensions["settings"]


def _raw(env: Mapping, name: str) -> str:
    return (env.get(name) or "").strip()


def _int(env, name, default, minimum: int | None = None):
    raw = _raw(env, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, raw, "a whole number") from None
    if minimum is not None and value < minimum:
        raise SettingsError(name, raw, f"a whole number of at least {minimum}")
    return value


def _port(env, name, default):
    value = _int(env, name, default)
    if value is not None and not 0 < value < 65536:
        raise SettingsError(name, _raw(env, name), "a port number, 1 to 65535")
    return value


def _float(env, name, default: float) -> float:
    raw = _raw(env, name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(name, raw, "a number (seconds, decimals allowed)") from None


_SIZE = re.compile(r"(\d+)\s*(B|K|KB|KIB|M|MB|MIB|G|GB|GIB)?", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def _size(env, name, default: int) -> int:
    """Bytes, plain or with a unit as nginx writes them: ``1048576``, ``512KB``, ``1MB`` (= 1 MiB, 1024-based)."""
    raw = _raw(env, name)
    if not raw:
        return default
    match = _SIZE.fullmatch(raw)
    if match is None:
        raise SettingsError(name, raw, "a size in bytes such as 1048576, 512KB or 1MB (1024-based)")
    return int(match[1]) * _UNITS[(match[2] or "")[:1].upper()]


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _flag(env, name) -> bool:
    raw = _raw(env, name)
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingsError(name, raw, "1/true/yes/on or 0/false/no/off")


def _url(env, name, default: str, schemes: tuple[str, ...] = ()) -> str:
    """A URL with a scheme (``scheme://...``); ``schemes`` limits which."""
    raw = _raw(env, name)
    if not raw:
        return default
    scheme = urlsplit(raw).scheme.lower() if "://" in raw else ""
    if not scheme or (schemes and scheme not in schemes):
        kinds = "/".join(schemes) if schemes else "scheme"
        raise SettingsError(name, raw, f"a URL such as {kinds}://host/...")
    return raw


def _choice(env, name, default: str, choices: tuple[str, ...], upper: bool = False) -> str:
    raw = _raw(env, name)
    if not raw:
        return default
    value = raw.upper() if upper else raw
    if value not in choices:
        raise SettingsError(name, raw, "one of " + ", ".join(choices))
    return value


def _list(env, name, lower=False) -> tuple[str, ...]:
    """A comma-separated setting, blanks dropped."""
    items = (item.strip() for item in env.get(name, "").split(","))
    return tuple(item.lower() if lower else item for item in items if item)


def load_settings(env: Mapping | None = None) -> Settings:
    """Build the settings from ``env`` (default: the process environment plus ``.env``).

    Raises ``SettingsError`` for the first malformed value.
    """
    if env is None:
        load_dotenv(PROJECT_ROOT / ".env", override=False)
        env = os.environ
    instance = Path(env.get("INSTANCE_PATH") or PROJECT_ROOT / "instance").resolve()
    waiter_port = _port(env, "WAITER_PORT", 5002)
    return Settings(
        INSTANCE_PATH=instance,
        DATABASE_URL=_url(env, "DATABASE_URL", f"sqlite:///{instance / 'predictions.sqlite'}"),
        CELERY_BROKER_URL=_url(env, "CELERY_BROKER_URL", "filesystem://"),
        CELERY_QUEUE=env.get("CELERY_QUEUE") or "inference",
        IMAGE_STORE_URL=_url(env, "IMAGE_STORE_URL", (instance / "images").as_uri(), ("file", "s3")),
        S3_ENDPOINT_URL=_url(env, "S3_ENDPOINT_URL", "", ("http", "https")),
        S3_CREATE_BUCKET=_flag(env, "S3_CREATE_BUCKET"),
        MAX_IMAGE_BYTES=_size(env, "MAX_IMAGE_BYTES", 1024 * 1024),
        MAX_IMAGE_PIXELS=_int(env, "MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS, minimum=1),
        MAX_JPEG_SCANS=_int(env, "MAX_JPEG_SCANS", DEFAULT_MAX_JPEG_SCANS, minimum=1),
        BATCH_MAX_IMAGES=_int(env, "BATCH_MAX_IMAGES", 1000, minimum=1),
        # Room for BATCH_MAX_IMAGES images of the largest size a single upload takes, and their part headers.
        BATCH_MAX_BYTES=_size(
            env,
            "BATCH_MAX_BYTES",
            _int(env, "BATCH_MAX_IMAGES", 1000, minimum=1) * (_size(env, "MAX_IMAGE_BYTES", 1024 * 1024) + 1024),
        ),
        MODEL_WEIGHTS_PATH=env.get("MODEL_WEIGHTS_PATH", ""),
        MODEL_RUNTIME=_choice(env, "MODEL_RUNTIME", "litert", ("litert", "keras")),
        MODEL_CACHE_DIR=Path(env.get("MODEL_CACHE_DIR") or instance / "model-cache"),
        REPUBLISH_PENDING_AFTER=_int(env, "REPUBLISH_PENDING_AFTER", 120, minimum=0),
        MAX_DELIVERIES=_int(env, "MAX_DELIVERIES", 5, minimum=0),
        BATCH_MAX_SIZE=_int(env, "BATCH_MAX_SIZE", 32, minimum=1),
        BATCH_MAX_WAIT=_float(env, "BATCH_MAX_WAIT", 0.005),
        WORKER_NICENESS=_int(env, "WORKER_NICENESS", 10),
        API_KEYS=_list(env, "API_KEYS"),
        METRICS_KEY=env.get("METRICS_KEY", "").strip(),
        RATE_LIMIT=env.get("RATE_LIMIT", "").strip(),
        RATE_LIMIT_STORAGE_URL=_url(env, "RATE_LIMIT_STORAGE_URL", "memory://"),
        IDEMPOTENCY_TTL_SECONDS=_int(env, "IDEMPOTENCY_TTL_SECONDS", 24 * 3600, minimum=0),
        RETENTION_DAYS=_int(env, "RETENTION_DAYS", None),
        ORPHAN_GRACE_SECONDS=_int(env, "ORPHAN_GRACE_SECONDS", 3600, minimum=0),
        WORKER_METRICS_PORT=_port(env, "WORKER_METRICS_PORT", None),
        WORKER_METRICS_BIND=env.get("WORKER_METRICS_BIND") or "0.0.0.0",
        BROKER_HEARTBEAT=_int(env, "BROKER_HEARTBEAT", 120, minimum=0),
        WAITER_PORT=waiter_port,
        WAITER_URL=_url(env, "WAITER_URL", "", ("http", "https")).rstrip("/"),
        WEBHOOK_SECRET=env.get("WEBHOOK_SECRET", ""),
        WEBHOOK_ALLOWED_HOSTS=_list(env, "WEBHOOK_ALLOWED_HOSTS", lower=True),
        WEBHOOK_ALLOW_PRIVATE=_flag(env, "WEBHOOK_ALLOW_PRIVATE"),
        WEBHOOK_RETRY_SECONDS=_int(env, "WEBHOOK_RETRY_SECONDS", 3600, minimum=0),
        WEBHOOK_FIRST_RETRY=_float(env, "WEBHOOK_FIRST_RETRY", 10),
        LOG_LEVEL=_choice(env, "LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
        PORT=_port(env, "PORT", 5000),
        WEB_BIND=env.get("WEB_BIND") or f"unix:{instance / 'web.sock'}",
        WEB_CONCURRENCY=_int(env, "WEB_CONCURRENCY", 2, minimum=1),
        WEB_THREADS=_int(env, "WEB_THREADS", 1, minimum=1),
        WORKER_CONCURRENCY=_int(env, "WORKER_CONCURRENCY", 2, minimum=1),
        WEBHOOK_CONCURRENCY=_int(env, "WEBHOOK_CONCURRENCY", 200, minimum=1),
        FLOWER_PORT=_port(env, "FLOWER_PORT", 5555),
        PROXY_BIND=env.get("PROXY_BIND") or "127.0.0.1",
        PROXY_HEADER_TIMEOUT=_int(env, "PROXY_HEADER_TIMEOUT", 10, minimum=1),
        PROXY_BODY_TIMEOUT=_int(env, "PROXY_BODY_TIMEOUT", 10, minimum=1),
        PROXY_SEND_TIMEOUT=_int(env, "PROXY_SEND_TIMEOUT", 10, minimum=1),
        PROXY_KEEPALIVE_TIMEOUT=_int(env, "PROXY_KEEPALIVE_TIMEOUT", 10, minimum=0),
        PROXY_READ_TIMEOUT=_int(env, "PROXY_READ_TIMEOUT", 60, minimum=1),
        PROXY_CONNECTIONS_PER_CLIENT=_int(env, "PROXY_CONNECTIONS_PER_CLIENT", 32, minimum=1),
        PROXY_WAITER_UPSTREAM=env.get("PROXY_WAITER_UPSTREAM") or f"127.0.0.1:{waiter_port}",
        WEBHOOK_CONNECT_TIMEOUT=_float(env, "WEBHOOK_CONNECT_TIMEOUT", 3),
        WEBHOOK_ATTEMPT_TIMEOUT=_float(env, "WEBHOOK_ATTEMPT_TIMEOUT", 10),
        WEBHOOK_PER_DESTINATION=_int(env, "WEBHOOK_PER_DESTINATION", 4, minimum=1),
    )
