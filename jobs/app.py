"""The Flask app both processes start from: settings, database, image store, Celery.

The web (``webapp.create_app``) adds its routes to it; the worker
(``tasks.worker``) adds its tasks. Celery tasks run inside its app context, as
in Flask's ``examples/celery``.
"""

import sqlite3

from celery import Celery, Task
from celeryconfig import celery_settings
from flask import Flask
from sqlalchemy import Engine, event

from config.settings import PROJECT_ROOT, Settings
from jobs.database import db, migrate
from jobs.imagestore import open_image_store
from jobs.tracing import init_tracing


def create_base_app(import_name: str, settings: Settings) -> Flask:
    """A Flask app with the service's settings, the database and the image store.

    The settings are kept in ``app.extensions["settings"]`` (read them with
    ``config.settings.current_settings``); ``app.config`` holds only what Flask and its
    extensions read.
    """
    # Before the database engine exists, so that its statements are traced.
    init_tracing(f"imgsvc-{import_name.rsplit('.', 1)[-1]}")
    app = Flask(import_name, instance_path=str(settings.INSTANCE_PATH))
    app.config["SQLALCHEMY_DATABASE_URI"] = settings.DATABASE_URL
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(settings.DATABASE_URL)
    app.extensions["settings"] = settings
    settings.INSTANCE_PATH.mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    app.extensions["image_store"] = open_image_store(
        settings.IMAGE_STORE_URL, settings.S3_ENDPOINT_URL, settings.S3_CREATE_BUCKET
    )
    celery_init_app(app, settings)
    return app


class AppContextTask(Task):
    """A task that runs inside its Flask app's context (database session, image store, settings)."""

    def __call__(self, *args, **kwargs):
        with self.app.flask_app.app_context():
            return self.run(*args, **kwargs)


def celery_init_app(app: Flask, settings: Settings) -> Celery:
    celery_app = Celery(app.import_name, task_cls=AppContextTask)
    celery_app.config_from_object(celery_settings(settings))
    celery_app.set_default()
    celery_app.flask_app = app
    app.extensions["celery"] = celery_app
    return celery_app


def engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        # Web and worker processes share the file: wait for a lock instead of failing.
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True, "pool_recycle": 280}


@event.listens_for(Engine, "connect")
def _sqlite_write_ahead_log(dbapi_connection, _record) -> None:
    """SQLite in WAL mode: readers (every GET, the waiter's checks) no longer hold the worker's commit
    back, and a commit is one write instead of several fsyncs of a rollback journal. It survives a
    crash of any process; only a power cut may lose the last commits."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
