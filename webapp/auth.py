"""API keys: with API_KEYS set, the prediction routes need ``Authorization: Bearer <key>``.

``/metrics`` needs METRICS_KEY when that is set (so Prometheus holds no key that can submit jobs),
else one of the API keys when those are set. The page, ``/docs``, ``/openapi.json`` and
``/health`` stay open: they show no job and no figure (docs/operations.md, "API keys").

``api_key_refusal`` is the check itself, shared by the Flask routes and the waiter.
"""

import hashlib
import hmac

from flask import request

from config.settings import current_settings
from webapp.errors import ApiError


def require_api_key() -> None:
    """A ``before_request`` hook: 401 unless the request carries one of the configured keys."""
    refusal = api_key_refusal(current_settings().API_KEYS, request.headers.get("Authorization", ""))
    if refusal is not None:
        raise refusal


def require_metrics_key() -> None:
    """A ``before_request`` hook for ``/metrics``: METRICS_KEY if set, else any API key, else open."""
    settings = current_settings()
    keys = (settings.METRICS_KEY,) if settings.METRICS_KEY else settings.API_KEYS
    refusal = api_key_refusal(keys, request.headers.get("Authorization", ""))
    if refusal is not None:
        raise refusal


def api_key_refusal(keys, authorization: str) -> ApiError | None:
    """None when ``keys`` is empty or ``authorization`` carries one of them; else the 401 to answer."""
    if not keys:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized("This API needs a key: send 'Authorization: Bearer <key>'.", 'Bearer realm="api"')
    presented = token.strip().encode()
    # Compare with every key, each in constant time, so timing reveals nothing.
    matches = [hmac.compare_digest(presented, key.encode()) for key in keys]
    if not any(matches):
        return _unauthorized("The API key is not valid.", 'Bearer realm="api", error="invalid_token"')
    return None


def _unauthorized(detail: str, challenge: str) -> ApiError:
    return ApiError(401, "Unauthorized", detail, {"WWW-Authenticate": challenge})


def api_key_scope() -> str:
    """What a client's own namespace (its idempotency keys, its batches) is named by: a hash of its
    API key, never the key itself; "" when API keys are off. Call after ``require_api_key``."""
    return key_scope(current_settings().API_KEYS, request.headers.get("Authorization", ""))


def key_scope(keys, authorization: str) -> str:
    """``api_key_scope`` from the settings' keys and an Authorization header (the waiter has no Flask)."""
    if not keys:
        return ""
    token = authorization.partition(" ")[2].strip()
    return hashlib.sha256(token.encode()).hexdigest()
