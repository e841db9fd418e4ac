"""``GET /health``: is the service able to accept work right now, and which models do the workers run?"""

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from jobs.database import db
from jobs.workers import live_workers

bp = Blueprint("health", __name__)


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:
        db.session.rollback()
        return False


def _workers() -> list[dict]:
    """Workers heard from lately (any host), with their model; empty when the database is down."""
    try:
        return live_workers()
    except Exception:
        db.session.rollback()
        return []


def _broker_ok() -> bool:
    try:
        with current_app.extensions["celery"].connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


@bp.get("/health", strict_slashes=False)
def health():
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    healthy = all(checks.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": {name: "ok" if ok else "unreachable" for name, ok in checks.items()},
        "workers": _workers() if checks["database"] else [],
    }
    return jsonify(body), 200 if healthy else 503
