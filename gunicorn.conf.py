"""Gunicorn reads this file from the working directory: JSON logs, the worker type, and a metrics folder.

``/metrics`` adds up the figures of this server's worker processes (prometheus-client's
multiprocess mode) from a folder private to this server: a fresh temporary directory,
removed at exit, unless ``PROMETHEUS_MULTIPROC_DIR`` names one. Workers serve their own.
"""

import os
import shutil
import tempfile

from gunicorn.glogging import Logger

from config.logging import logging_config
from config.settings import load_settings

settings = load_settings()


class NoAccessLogger(Logger):
    """nginx writes the one access line per request, so Gunicorn builds none: with a
    ``logconfig_dict`` it would format every request's access atoms only to drop them."""

    access_log_enabled = False


logger_class = NoAccessLogger
logconfig_dict = logging_config(settings.LOG_LEVEL)
# One thread per process: the sync worker. nginx hands Gunicorn whole requests and takes whole
# answers, and ?wait long polls go to the waiter, so a process is never held by a slow client; the
# gthread machinery (selector, futures, locks) cost more CPU per request than the waits it overlapped.
threads = settings.WEB_THREADS
# Gunicorn's request limits, looser than the proxy's (deploy/nginx/api.conf.template: a request line
# and each header line at most 4 KiB, never more than 16 KiB of headers in all) even with the headers
# nginx adds, so nginx refuses an over-long request with a problem document before Gunicorn could
# answer it in HTML.
limit_request_line = 8190  # Gunicorn's largest
limit_request_field_size = 8190  # a 4 KiB X-Forwarded-For plus the address nginx appends fits
limit_request_fields = 32768  # Gunicorn's largest; 16 KiB holds at most 4096 header lines
if threads > 1:
    # Only the gthread worker keeps connections alive (the sync worker closes each after its answer):
    # longer than the proxy keeps an idle one (deploy/nginx/api.conf.template, 60 s), so nginx never
    # reuses a connection that Gunicorn has just closed.
    keepalive = 75
# No control socket (gunicornc): its default is one fixed path in $HOME or $XDG_RUNTIME_DIR, shared by
# every Gunicorn of the user, so a second instance on the host would take the first one's; the
# supervisor (deploy/supervise.py) and signals manage the process instead.
control_socket_disable = True

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Set here, in the master, before any worker process imports prometheus-client.
    _metrics_folder = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="web-metrics-")

    def on_exit(_server):
        shutil.rmtree(_metrics_folder, ignore_errors=True)
