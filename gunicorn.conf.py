"""Gunicorn reads this file from the working directory: JSON logs, and threads per worker.

A POST spends much of its time waiting on the database commit and the broker's
publish confirm; threads let one process overlap those waits (gthread worker).
"""
import os

from config.logging import logging_config

logconfig_dict = logging_config(os.environ.get("LOG_LEVEL") or "INFO")
threads = int(os.environ.get("WEB_THREADS") or 4)
# Longer than the proxy keeps an idle connection to Gunicorn (deploy/nginx/api.conf.template, 60 s),
# so nginx never reuses one that Gunicorn has just closed.
keepalive = 75
