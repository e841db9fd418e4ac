"""The two ways a client asks to hear about a job's end: a callback URL on POST, ``wait`` on GET.

Shared by the Flask routes and the waiter (``webapp.waiter``), so both refuse the same input.
"""

import re
import uuid

from jobs.callbacks import CallbackRefused, vet_callback_url
from webapp.errors import ApiError

CALLBACK_HEADER = "X-Callback-URL"
MAX_WAIT_SECONDS = 30
_WAIT = re.compile(r"^\d{1,2}(\.\d{1,6})?$")


def is_uuid4(value: str) -> bool:
    """Only UUID4 ids are looked up; anything else is a 404 without a query."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value.lower()


def parse_wait(raw: str | None) -> float | None:
    """Seconds to wait, from the ``wait`` query argument (0 < N ≤ 30); None when absent."""
    if raw is None:
        return None
    seconds = float(raw) if _WAIT.match(raw) else 0
    if not 0 < seconds <= MAX_WAIT_SECONDS:
        raise ApiError(
            422, "Invalid request", f"'wait' must be a number of seconds above 0 and at most {MAX_WAIT_SECONDS}."
        )
    return seconds


def accepted_callback(field, header: str | None, settings) -> str | None:
    """The vetted callback URL of a POST, from its body field (JSON or form) or its header; None if none."""
    if field is not None and header is not None and field != header:
        raise ApiError(422, "Invalid request", f"Give the callback URL once: 'callback_url' or {CALLBACK_HEADER}.")
    url = field if field is not None else header
    if url is None:
        return None
    if not settings.WEBHOOK_SECRET:
        raise ApiError(
            422, "Invalid request", "This service sends no webhooks: it has no WEBHOOK_SECRET to sign them with."
        )
    if not isinstance(url, str):
        raise ApiError(422, "Invalid request", "'callback_url' must be a string.")
    try:
        target = vet_callback_url(url, settings.WEBHOOK_ALLOWED_HOSTS, settings.WEBHOOK_ALLOW_PRIVATE)
    except CallbackRefused as refusal:
        raise ApiError(422, "Invalid request", str(refusal)) from None
    return target.url
