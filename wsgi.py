"""Entry point for Gunicorn (``wsgi:app``) and Celery (``-A wsgi:celery_app``)."""
from webapp import create_app

app = create_app()
celery_app = app.extensions["celery"]
