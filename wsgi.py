"""Entry point for Gunicorn (``wsgi:app``) and the Flask CLI (``flask --app wsgi db upgrade``).

The worker has its own entry point: ``celery -A tasks.worker:celery_app worker``.
"""

from werkzeug.middleware.proxy_fix import ProxyFix

from config.settings import load_settings
from webapp import create_app

app = create_app(load_settings())
# Gunicorn listens only for the proxy (deploy/proxy.py), which ends X-Forwarded-For with the client's
# address: the rate limiter sees the client, not nginx. (X-Forwarded-Proto: Gunicorn's forwarded_allow_ips.)
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=0)  # type: ignore[method-assign]
