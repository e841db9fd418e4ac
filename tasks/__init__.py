"""Celery wiring: one Celery app per Flask app, tasks run inside its app context.

Follows Flask's ``examples/celery``: ``create_app`` calls ``celery_init_app``,
and the worker is started with ``celery -A wsgi:celery_app worker``.
"""
from celery import Celery, Task
from flask import Flask


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    celery_app.flask_app = app
    app.extensions["celery"] = celery_app
    return celery_app
