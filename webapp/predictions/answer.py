"""The answer to ``GET /predictions/<uuid>``, built once for the Flask view and the waiter alike.

Both say the same thing in the same words: 404 for an id that is not a UUID4 or names no job,
503 with ``Retry-After`` while the database is unreachable, 202 with ``Retry-After`` while the
job is pending, 200 once it has ended.
"""

from typing import Any

from jobs.records import PENDING
from webapp.errors import ApiError
from webapp.predictions.notify import is_uuid4

RETRY_AFTER_PENDING = "1"  # seconds a client should wait before asking again about a pending job
RETRY_AFTER_UNAVAILABLE = "5"


def checked_uuid(prediction_uuid: str) -> str:
    """The id as rows store it (lower case), or the 404 problem for one that is not a UUID4."""
    if not is_uuid4(prediction_uuid):
        raise ApiError(404, "Not Found", f"{prediction_uuid[:64]!r} is not a prediction id (a UUID4).")
    return prediction_uuid.lower()


def no_such_prediction(prediction_uuid: str) -> ApiError:
    return ApiError(404, "Not Found", f"No prediction has id {prediction_uuid}.")


def unavailable(what: str) -> ApiError:
    return ApiError(
        503,
        "Service Unavailable",
        f"The {what} is unavailable; try again shortly.",
        {"Retry-After": RETRY_AFTER_UNAVAILABLE},
    )


def prediction_answer(prediction_uuid: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, JSON body, headers) for the job's GET JSON (``jobs.records.prediction_json``), or the 404."""
    if body is None:
        raise no_such_prediction(prediction_uuid)
    if body["status"] == PENDING:
        return 202, body, {"Retry-After": RETRY_AFTER_PENDING}
    return 200, body, {}
