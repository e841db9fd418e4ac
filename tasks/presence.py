"""Each worker tells the shared database which model it runs, so ``/health`` can list
the live workers of every host (``jobs.workers``).

The worker's parent upserts its row when it is ready and then every
``HEARTBEAT_SECONDS`` from a daemon thread, and deletes it on a clean stop; a
killed worker's row simply stops being refreshed. The parent closes its database
connections after each beat, and pool processes drop inherited ones, so no
connection is ever shared across a fork.
"""

import logging
import threading

from celery import current_app
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from jobs import workers
from jobs.database import db
from tasks.worker_model import model_description

logger = logging.getLogger(__name__)
_stop = threading.Event()
_hostname: list[str] = []


def _beat(flask_app, hostname: str) -> None:
    with flask_app.app_context():
        try:
            workers.heartbeat(hostname, model_description())
        except Exception:  # a database outage must not stop the worker; the next beat tries again
            db.session.rollback()
            logger.warning("could not record this worker's heartbeat", exc_info=True)
        finally:
            db.session.remove()
            db.engine.dispose()


def _beat_until_stopped(flask_app, hostname: str) -> None:
    while not _stop.wait(workers.HEARTBEAT_SECONDS):
        _beat(flask_app, hostname)


@worker_ready.connect
def announce_model(sender=None, **_):
    flask_app = current_app.flask_app
    _hostname.append(sender.hostname)
    _beat(flask_app, sender.hostname)
    threading.Thread(
        target=_beat_until_stopped, args=(flask_app, sender.hostname), name="worker-heartbeat", daemon=True
    ).start()


@worker_shutdown.connect
def withdraw(**_):
    _stop.set()
    if not _hostname:
        return
    with current_app.flask_app.app_context():
        try:
            workers.forget(_hostname[0])
        except Exception:
            logger.warning("could not remove this worker's row; it ages out of /health", exc_info=True)


@worker_process_init.connect
def drop_inherited_connections(**_):
    with current_app.flask_app.app_context():
        db.engine.dispose(close=False)
