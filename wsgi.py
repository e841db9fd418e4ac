"""Entry point for Gunicorn (``wsgi:app``) and the Flask CLI (``flask --app wsgi db upgrade``).

The worker has its own entry point: ``celery -A tasks.worker:celery_app worker``.
"""
from webapp import create_app

app = create_app()
