"""The two API routes: accept an image (``jobs.submit`` makes the job), and report what became of it."""
import logging

from flask import Blueprint, current_app, jsonify, request, url_for
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from config.logging import bind_job
from jobs.imagecheck import configured_limits
from jobs.imagestore import ImageStoreUnavailable
from jobs.records import PENDING, find_prediction, prediction_json
from jobs.submit import DatabaseUnavailable, submit_job
from webapp.auth import require_api_key
from webapp.errors import ApiError
from webapp.predictions.notify import CALLBACK_HEADER, accepted_callback, is_uuid4, parse_wait
from webapp.predictions.validation import validate_upload

logger = logging.getLogger(__name__)
bp = Blueprint("predictions", __name__)
bp.before_request(require_api_key)

RETRY_AFTER_SECONDS = "1"


def _unavailable(what: str) -> ApiError:
    return ApiError(503, "Service Unavailable", f"The {what} is unavailable; try again shortly.",
                    {"Retry-After": "5"})


@bp.post("/inference/image", strict_slashes=False)
def submit_image():
    config = current_app.config
    upload = validate_upload(_read_body(), config["MAX_IMAGE_BYTES"], configured_limits(config))
    callback_url = accepted_callback(upload.callback_url, request.headers.get(CALLBACK_HEADER), config)
    try:
        prediction_uuid = submit_job(upload.name, upload.image, upload.extension, callback_url)
    except ImageStoreUnavailable:
        logger.exception("could not store an image")
        raise _unavailable("image store") from None
    except DatabaseUnavailable:
        raise _unavailable("database") from None
    bind_job(prediction_uuid)
    # repr() escapes newlines and control characters, so a name cannot forge log lines.
    logger.info("accepted %s, name %r", prediction_uuid, upload.name)
    location = url_for("predictions.get_prediction", prediction_uuid=prediction_uuid)
    return jsonify(uuid=prediction_uuid), 202, {"Location": location}


def _read_body() -> bytes:
    """The whole body, or 413 once it reaches the limit.

    A declared Content-Length over the limit is refused before reading. A chunked
    body is read only up to the limit, and Werkzeug then stops without an error,
    so a body that fills the limit is taken as cut short.
    """
    body = request.get_data(cache=False)
    if request.max_content_length is not None and len(body) >= request.max_content_length:
        raise RequestEntityTooLarge()
    return body


@bp.get("/predictions/<prediction_uuid>", strict_slashes=False)
def get_prediction(prediction_uuid: str):
    """The job's state. ``?wait=N`` is served by the waiter (webapp/waiter.py, routed there by nginx);
    one that reaches Gunicorn is redirected to ``WAITER_URL`` when set, else answered at once."""
    wait = parse_wait(request.args.get("wait"))
    if not is_uuid4(prediction_uuid):
        raise ApiError(404, "Not Found", f"{prediction_uuid[:64]!r} is not a prediction id (a UUID4).")
    bind_job(prediction_uuid.lower())
    try:
        row = find_prediction(prediction_uuid.lower())
    except SQLAlchemyError:
        raise _unavailable("database") from None
    if row is None:
        raise ApiError(404, "Not Found", f"No prediction has id {prediction_uuid}.")
    if row.status == PENDING:
        if wait is not None and current_app.config["WAITER_URL"]:
            return "", 307, {"Location": current_app.config["WAITER_URL"] + request.full_path}
        return jsonify(prediction_json(row)), 202, {"Retry-After": RETRY_AFTER_SECONDS}
    return jsonify(prediction_json(row)), 200

