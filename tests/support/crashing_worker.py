"""The real worker, except that an image containing CRASH_MARKER kills its pool process.

Started as ``celery -A tests.support.crashing_worker:celery_app worker`` by the crash-loop
test: ``os._exit`` is what a segfault or an OOM kill looks like to the pool.
"""

import os

import tasks.classify
from tasks.worker import celery_app  # noqa: F401  the app celery -A loads

CRASH_MARKER = b"CRASH-THIS-WORKER"
_prepare = tasks.classify.prepare


def _prepare_or_die(data: bytes, *args, **kwargs):
    if CRASH_MARKER in data:
        os._exit(1)
    return _prepare(data, *args, **kwargs)


tasks.classify.prepare = _prepare_or_die
