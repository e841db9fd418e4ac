"""Optional per-client request limit on the API (predictions and batches), off unless RATE_LIMIT is set.

Clients are told apart by the address the app sees. With several Gunicorn
workers, ``memory://`` counts per worker; a shared store (``redis://``) counts
for the whole service. A store that fails lets requests through rather than
failing them.
"""

from flask import Blueprint, Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many


def init_rate_limit(app: Flask, blueprints: list[Blueprint]) -> None:
    """One budget per client across ``blueprints``: a client cannot double it by also using batches."""
    rate = app.extensions["settings"].RATE_LIMIT
    if rate:
        parse_many(rate)  # a typo stops the service at start, not every request later
    app.config.update(
        RATELIMIT_ENABLED=bool(rate),
        RATELIMIT_STORAGE_URI=app.extensions["settings"].RATE_LIMIT_STORAGE_URL,
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    limiter = Limiter(get_remote_address, app=app)
    if rate:
        shared = limiter.shared_limit(rate, scope="api")  # one budget for every route of every blueprint
        for blueprint in blueprints:
            shared(blueprint)
