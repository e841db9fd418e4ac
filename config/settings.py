"""Every setting of the service, read once from the environment.

The defaults give the embedded setup (SQLite, a filesystem broker and a local
image directory under ``instance/``), so a fresh clone runs with no
configuration. Real services are chosen by setting the URLs.
"""
import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _int(env, name, default):
    raw = env.get(name)
    return int(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    instance_dir: Path
    database_url: str
    broker_url: str
    queue_name: str
    image_store_url: str
    s3_endpoint_url: str
    s3_create_bucket: bool
    max_image_bytes: int
    max_image_pixels: int
    model_weights_path: str
    model_runtime: str
    model_cache_dir: Path
    republish_pending_after: int
    batch_max_size: int
    worker_niceness: int
    batch_max_wait: float
    api_keys: tuple[str, ...]
    rate_limit: str
    rate_limit_storage_url: str
    worker_metrics_port: int | None
    broker_heartbeat: int
    worker_metrics_bind: str

    @property
    def broker_folder(self) -> Path:
        """Where the embedded filesystem broker keeps its messages."""
        return self.instance_dir / "broker"


def load_settings(env=None) -> Settings:
    """Build the settings from ``env`` (default: the process environment plus ``.env``)."""
    if env is None:
        load_dotenv(PROJECT_ROOT / ".env", override=False)
        env = os.environ
    instance_dir = Path(env.get("INSTANCE_PATH") or PROJECT_ROOT / "instance").resolve()
    return Settings(
        instance_dir=instance_dir,
        database_url=env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'predictions.sqlite'}",
        broker_url=env.get("CELERY_BROKER_URL") or "filesystem://",
        queue_name=env.get("CELERY_QUEUE") or "inference",
        image_store_url=env.get("IMAGE_STORE_URL") or (instance_dir / "images").as_uri(),
        s3_endpoint_url=env.get("S3_ENDPOINT_URL", ""),
        s3_create_bucket=env.get("S3_CREATE_BUCKET", "").lower() in ("1", "true", "yes"),
        max_image_bytes=_int(env, "MAX_IMAGE_BYTES", 1024 * 1024),
        max_image_pixels=_int(env, "MAX_IMAGE_PIXELS", 40_000_000),
        model_weights_path=env.get("MODEL_WEIGHTS_PATH", ""),
        model_runtime=env.get("MODEL_RUNTIME") or "litert",
        model_cache_dir=Path(env.get("MODEL_CACHE_DIR") or instance_dir / "model-cache"),
        republish_pending_after=_int(env, "REPUBLISH_PENDING_AFTER", 120),
        batch_max_size=_int(env, "BATCH_MAX_SIZE", 32),
        worker_niceness=_int(env, "WORKER_NICENESS", 10),
        batch_max_wait=float(env.get("BATCH_MAX_WAIT") or 0.005),
        api_keys=tuple(key.strip() for key in env.get("API_KEYS", "").split(",") if key.strip()),
        rate_limit=env.get("RATE_LIMIT", "").strip(),
        rate_limit_storage_url=env.get("RATE_LIMIT_STORAGE_URL") or "memory://",
        worker_metrics_port=_int(env, "WORKER_METRICS_PORT", None),
        broker_heartbeat=_int(env, "BROKER_HEARTBEAT", 120),
        worker_metrics_bind=env.get("WORKER_METRICS_BIND") or "0.0.0.0",
    )
