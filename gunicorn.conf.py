"""Gunicorn reads this file from the working directory: JSON logs, threads per worker, and a metrics folder.

A POST spends much of its time waiting on the database commit and the broker's
publish confirm; threads let one process overlap those waits (gthread worker).

``/metrics`` adds up the figures of this server's worker processes (prometheus-client's
multiprocess mode) from a folder private to this server: a fresh temporary directory,
removed at exit, unless ``PROMETHEUS_MULTIPROC_DIR`` names one. Workers serve their own.
"""

import os
import shutil
import tempfile

from config.logging import logging_config

logconfig_dict = logging_config(os.environ.get("LOG_LEVEL") or "INFO")
threads = int(os.environ.get("WEB_THREADS") or 4)
# Longer than the proxy keeps an idle connection to Gunicorn (deploy/nginx/api.conf.template, 60 s),
# so nginx never reuses one that Gunicorn has just closed.
keepalive = 75

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Set here, in the master, before any worker process imports prometheus-client.
    _metrics_folder = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="web-metrics-")

    def on_exit(_server):
        shutil.rmtree(_metrics_folder, ignore_errors=True)
