"""The API routes: accept an image (``jobs.submit`` makes the job), report what became of it, cancel it."""

import logging

from flask import Blueprint, jsonify, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from config.logging import bind_job
from config.settings import current_settings
from jobs.endings import announce_ended
from jobs.idempotency import MAX_KEY_LENGTH, IdempotencyConflict
from jobs.imagecheck import configured_limits
from jobs.imagestore import ImageStoreUnavailable
from jobs.records import CANCELLED, PENDING, cancel_job, find_prediction, prediction_json
from jobs.submit import DatabaseUnavailable, submit_job
from webapp.auth import api_key_scope, require_api_key
from webapp.errors import ApiError
from webapp.predictions.answer import checked_uuid, no_such_prediction, prediction_answer, unavailable
from webapp.predictions.notify import CALLBACK_HEADER, accepted_callback, parse_wait
from webapp.predictions.uploads import read_upload

logger = logging.getLogger(__name__)
bp = Blueprint("predictions", __name__)
bp.before_request(require_api_key)


@bp.post("/inference/image", strict_slashes=False)
def submit_image():
    settings = current_settings()
    idempotency = _idempotency_key()
    upload = read_upload(settings.MAX_IMAGE_BYTES, configured_limits(settings))
    callback_url = accepted_callback(upload.callback_url, request.headers.get(CALLBACK_HEADER), settings)
    try:
        prediction_uuid = submit_job(
            upload.name, upload.image, upload.extension, callback_url, idempotency, client=api_key_scope()
        )
    except ImageStoreUnavailable:
        logger.exception("could not store an image")
        raise unavailable("image store") from None
    except DatabaseUnavailable:
        raise unavailable("database") from None
    except IdempotencyConflict:
        raise ApiError(
            422,
            "Unprocessable Content",
            "This Idempotency-Key was already used with a different image or name; use a new key for a new request.",
        ) from None
    bind_job(prediction_uuid)
    # repr() escapes newlines and control characters, so a name cannot forge log lines.
    logger.info("accepted %s, name %r", prediction_uuid, upload.name)
    location = url_for("predictions.get_prediction", prediction_uuid=prediction_uuid)
    return jsonify(uuid=prediction_uuid), 202, {"Location": location}


def _idempotency_key() -> tuple[str, str] | None:
    """(scope, key) from the ``Idempotency-Key`` header, or None without one."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key) or key != key.strip():
        raise ApiError(
            400,
            "Invalid request",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII "
            "characters, not starting or ending with a space (a UUID is good).",
        )
    return api_key_scope(), key


@bp.get("/predictions/<prediction_uuid>", strict_slashes=False)
def get_prediction(prediction_uuid: str):
    """The job's state. ``?wait=N`` is served by the waiter (webapp/waiter.py, routed there by nginx);
    one that reaches Gunicorn is redirected to ``WAITER_URL`` when set, else answered at once."""
    wait = parse_wait(request.args.get("wait"))
    row = _existing(prediction_uuid, find_prediction)
    if row.status == PENDING and wait is not None and current_settings().WAITER_URL:
        return "", 307, {"Location": current_settings().WAITER_URL + request.full_path}
    status, body, headers = prediction_answer(row.uuid, prediction_json(row))
    return jsonify(body), status, headers


@bp.delete("/predictions/<prediction_uuid>", strict_slashes=False)
def cancel_prediction(prediction_uuid: str):
    """Cancel a pending job (idempotent); a job that already ended cannot be."""
    row, cancelled_now = _existing(prediction_uuid, cancel_job)
    if row.status != CANCELLED:
        raise ApiError(409, "Conflict", f"Prediction {row.uuid} already ended ({row.status}); it cannot be cancelled.")
    if cancelled_now:
        logger.info("cancelled %s", row.uuid)
        announce_ended({row.uuid: CANCELLED})  # as any end: wakes ?wait pollers, sends its webhook
    return jsonify(prediction_json(row)), 200


def _existing(prediction_uuid: str, operation):
    """``operation(uuid)`` on a valid id, or the 404 / 503 problem. An operation that returns a
    (row, extra) pair is answered with the pair; a bare row is checked the same way."""
    stored_uuid = checked_uuid(prediction_uuid)
    bind_job(stored_uuid)
    try:
        result = operation(stored_uuid)
    except SQLAlchemyError:
        raise unavailable("database") from None
    row = result[0] if isinstance(result, tuple) else result
    if row is None:
        raise no_such_prediction(prediction_uuid)
    return result
