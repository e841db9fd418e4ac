"""Each worker tells the shared database which model it runs, so ``/health`` can list
the live workers of every host (``jobs.workers``).

The worker's parent upserts its row when it is ready and then every
``HEARTBEAT_SECONDS`` from a daemon thread, and deletes it on a clean stop; a
killed worker's row simply stops being refreshed. The parent closes its database
connections after each beat, and pool processes drop inherited ones, so no
connection is ever shared across a fork. ``tasks/lifecycle.py`` calls these.
"""

import logging
import threading

from flask import Flask

from jobs import workers
from jobs.database import db
from tasks.state import WorkerState

logger = logging.getLogger(__name__)


def _beat(flask_app: Flask, state: WorkerState) -> None:
    assert state.hostname is not None, "set by announce_model before the first beat"
    with flask_app.app_context():
        try:
            workers.heartbeat(state.hostname, state.model_provenance)
        except Exception:  # a database outage must not stop the worker; the next beat tries again
            db.session.rollback()
            logger.warning("could not record this worker's heartbeat", exc_info=True)
        finally:
            db.session.remove()
            db.engine.dispose()


def _beat_until_stopped(flask_app: Flask, state: WorkerState) -> None:
    while not state.heartbeat_stop.wait(workers.HEARTBEAT_SECONDS):
        _beat(flask_app, state)


def announce_model(flask_app: Flask, state: WorkerState, hostname: str) -> None:
    state.hostname = hostname
    _beat(flask_app, state)
    threading.Thread(target=_beat_until_stopped, args=(flask_app, state), name="worker-heartbeat", daemon=True).start()


def withdraw(flask_app: Flask, state: WorkerState) -> None:
    state.heartbeat_stop.set()
    if state.hostname is None:
        return
    with flask_app.app_context():
        try:
            workers.forget(state.hostname)
        except Exception:
            logger.warning("could not remove this worker's row; it ages out of /health", exc_info=True)


def drop_inherited_connections(flask_app: Flask) -> None:
    with flask_app.app_context():
        db.engine.dispose(close=False)
