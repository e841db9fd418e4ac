"""``GET /health``: is the service able to accept work right now?"""
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from jobs.database import db

bp = Blueprint("health", __name__)


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:
        db.session.rollback()
        return False


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
    body = {"status": "ok" if healthy else "unavailable",
            "checks": {name: "ok" if ok else "unreachable" for name, ok in checks.items()}}
    return jsonify(body), 200 if healthy else 503
