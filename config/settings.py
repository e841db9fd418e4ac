"""Every setting of the service, read once from the environment.

Each setting has one name: the environment variable, the attribute here, and
the key in the Flask config (``app.config.from_mapping(settings.as_config())``)
are the same. Celery's own option names are derived from them in
``celeryconfig.py``.

The defaults give the embedded setup (SQLite, the embedded SQLite broker and a local
image directory under ``instance/``), so a fresh clone runs with no
configuration. Real services are chosen by setting the URLs.
"""

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Measured by `python -m bench.decode_budget`: the worst image these admit decodes in at most
# 0.4 s of CPU and ~100 MB of peak memory. 4096x3072 (12.6 MP) takes a 4032x3024 phone photo;
# at that size an RGBA PNG or TIFF and a 4:4:4 CMYK progressive JPEG peak at ~100 MB.
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 3072
# libjpeg walks every coefficient block once per scan (about 4 ms a scan at 12.6 MP: 0.33 s for
# 64); encoders write a dozen or so.
DEFAULT_MAX_JPEG_SCANS = 64


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
    MODEL_WEIGHTS_PATH: str
    MODEL_RUNTIME: str
    MODEL_CACHE_DIR: Path
    REPUBLISH_PENDING_AFTER: int
    MAX_DELIVERIES: int
    BATCH_MAX_SIZE: int
    BATCH_MAX_WAIT: float
    BULK_LANES: int
    WORKER_NICENESS: int
    API_KEYS: tuple[str, ...]
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

    @property
    def broker_file(self) -> Path:
        """Where the embedded broker (``embedded://``) keeps its messages."""
        return self.INSTANCE_PATH / "broker.sqlite"

    @property
    def max_request_bytes(self) -> int:
        """The largest request body: a base64 image (4/3 of its bytes) plus room for the JSON around it.

        The app (``MAX_CONTENT_LENGTH``) and the proxy (``client_max_body_size``) both use it.
        """
        return self.MAX_IMAGE_BYTES * 4 // 3 + 64 * 1024

    def as_config(self) -> dict:
        """The settings as Flask config keys (the same names)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


def _int(env, name, default):
    raw = env.get(name)
    return int(raw) if raw not in (None, "") else default


def _flag(env, name) -> bool:
    return env.get(name, "").lower() in ("1", "true", "yes")


def _list(env, name, lower=False) -> tuple[str, ...]:
    """A comma-separated setting, blanks dropped."""
    items = (item.strip() for item in env.get(name, "").split(","))
    return tuple(item.lower() if lower else item for item in items if item)


def load_settings(env=None) -> Settings:
    """Build the settings from ``env`` (default: the process environment plus ``.env``)."""
    if env is None:
        load_dotenv(PROJECT_ROOT / ".env", override=False)
        env = os.environ
    instance = Path(env.get("INSTANCE_PATH") or PROJECT_ROOT / "instance").resolve()
    return Settings(
        INSTANCE_PATH=instance,
        DATABASE_URL=env.get("DATABASE_URL") or f"sqlite:///{instance / 'predictions.sqlite'}",
        CELERY_BROKER_URL=env.get("CELERY_BROKER_URL") or "embedded://",
        CELERY_QUEUE=env.get("CELERY_QUEUE") or "inference",
        IMAGE_STORE_URL=env.get("IMAGE_STORE_URL") or (instance / "images").as_uri(),
        S3_ENDPOINT_URL=env.get("S3_ENDPOINT_URL", ""),
        S3_CREATE_BUCKET=_flag(env, "S3_CREATE_BUCKET"),
        MAX_IMAGE_BYTES=_int(env, "MAX_IMAGE_BYTES", 1024 * 1024),
        MAX_IMAGE_PIXELS=_int(env, "MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS),
        MAX_JPEG_SCANS=_int(env, "MAX_JPEG_SCANS", DEFAULT_MAX_JPEG_SCANS),
        MODEL_WEIGHTS_PATH=env.get("MODEL_WEIGHTS_PATH", ""),
        MODEL_RUNTIME=env.get("MODEL_RUNTIME") or "litert",
        MODEL_CACHE_DIR=Path(env.get("MODEL_CACHE_DIR") or instance / "model-cache"),
        REPUBLISH_PENDING_AFTER=_int(env, "REPUBLISH_PENDING_AFTER", 120),
        MAX_DELIVERIES=_int(env, "MAX_DELIVERIES", 5),
        BATCH_MAX_SIZE=_int(env, "BATCH_MAX_SIZE", 32),
        BATCH_MAX_WAIT=float(env.get("BATCH_MAX_WAIT") or 0.005),
        BULK_LANES=max(_int(env, "BULK_LANES", 8), 1),
        WORKER_NICENESS=_int(env, "WORKER_NICENESS", 10),
        API_KEYS=_list(env, "API_KEYS"),
        RATE_LIMIT=env.get("RATE_LIMIT", "").strip(),
        RATE_LIMIT_STORAGE_URL=env.get("RATE_LIMIT_STORAGE_URL") or "memory://",
        IDEMPOTENCY_TTL_SECONDS=_int(env, "IDEMPOTENCY_TTL_SECONDS", 24 * 3600),
        RETENTION_DAYS=_int(env, "RETENTION_DAYS", None),
        ORPHAN_GRACE_SECONDS=_int(env, "ORPHAN_GRACE_SECONDS", 3600),
        WORKER_METRICS_PORT=_int(env, "WORKER_METRICS_PORT", None),
        WORKER_METRICS_BIND=env.get("WORKER_METRICS_BIND") or "0.0.0.0",
        BROKER_HEARTBEAT=_int(env, "BROKER_HEARTBEAT", 120),
        WAITER_PORT=_int(env, "WAITER_PORT", 5002),
        WAITER_URL=env.get("WAITER_URL", "").strip().rstrip("/"),
        WEBHOOK_SECRET=env.get("WEBHOOK_SECRET", ""),
        WEBHOOK_ALLOWED_HOSTS=_list(env, "WEBHOOK_ALLOWED_HOSTS", lower=True),
        WEBHOOK_ALLOW_PRIVATE=_flag(env, "WEBHOOK_ALLOW_PRIVATE"),
        WEBHOOK_RETRY_SECONDS=_int(env, "WEBHOOK_RETRY_SECONDS", 3600),
        WEBHOOK_FIRST_RETRY=float(env.get("WEBHOOK_FIRST_RETRY") or 10),
    )
