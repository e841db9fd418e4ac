"""The web application: request → validate → store image → record row → enqueue."""
import os

from flask import Flask

from celeryconfig import celery_settings
from config.logging import unbind_job
from config.settings import PROJECT_ROOT, load_settings
from webapp.errors import register_error_handlers
from webapp.extensions import db, migrate
from webapp.imagestore import open_image_store
from webapp.ratelimit import init_rate_limit

# Base64 grows data by 4/3; leave room for the JSON around it.
JSON_OVERHEAD_BYTES = 64 * 1024


def create_app(test_config: dict | None = None) -> Flask:
    settings = load_settings()
    app = Flask(__name__, instance_path=str(settings.instance_dir))
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        IMAGE_STORE_URL=settings.image_store_url,
        S3_ENDPOINT_URL=settings.s3_endpoint_url,
        S3_CREATE_BUCKET=settings.s3_create_bucket,
        MAX_IMAGE_BYTES=settings.max_image_bytes,
        MAX_IMAGE_PIXELS=settings.max_image_pixels,
        MODEL_WEIGHTS_PATH=settings.model_weights_path,
        MODEL_RUNTIME=settings.model_runtime,
        WORKER_NICENESS=settings.worker_niceness,
        MODEL_CACHE_DIR=settings.model_cache_dir,
        REPUBLISH_PENDING_AFTER=settings.republish_pending_after,
        API_KEYS=settings.api_keys,
        RATE_LIMIT=settings.rate_limit,
        RATE_LIMIT_STORAGE_URL=settings.rate_limit_storage_url,
        WORKER_METRICS_PORT=settings.worker_metrics_port,
        WORKER_METRICS_BIND=settings.worker_metrics_bind,
        CELERY=celery_settings(settings),
    )
    if test_config:
        test_config = dict(test_config)
        app.config["CELERY"].update(test_config.pop("CELERY", {}))
        app.config.from_mapping(test_config)
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_IMAGE_BYTES"] * 4 // 3 + JSON_OVERHEAD_BYTES
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    os.makedirs(app.instance_path, exist_ok=True)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    app.extensions["image_store"] = open_image_store(
        app.config["IMAGE_STORE_URL"], app.config["S3_ENDPOINT_URL"], app.config["S3_CREATE_BUCKET"]
    )

    from tasks import celery_init_app

    celery_init_app(app)
    import tasks.joblogs  # noqa: F401  the worker logs in the same JSON format
    import tasks.sweeper  # noqa: F401  registers the sweeper task with this Celery app

    from webapp import apidocs, health, page
    from webapp.metrics import init_metrics
    from webapp.predictions import views

    app.register_blueprint(views.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(apidocs.bp)
    app.register_blueprint(page.bp)
    init_rate_limit(app, views.bp)
    init_metrics(app)
    register_error_handlers(app)
    app.teardown_request(lambda _error: unbind_job())  # a job's uuid tags only its own request's lines
    return app


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        # Web and worker processes share the file: wait for a lock instead of failing.
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True, "pool_recycle": 280}
