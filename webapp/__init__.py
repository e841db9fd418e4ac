"""The web application: request → validate → store image → record row → enqueue.

It publishes jobs by task name (``jobs.queue``) and never imports the worker
package ``tasks``; it never loads the model either.
"""

from flask import Flask, Response, request

from config.logging import unbind_job
from config.settings import Settings
from jobs.app import create_base_app
from jobs.tracing import instrument_flask
from webapp.errors import register_error_handlers
from webapp.jsonprovider import OrjsonProvider
from webapp.ratelimit import init_rate_limit
from webapp.security import init_security_headers


def create_app(settings: Settings) -> Flask:
    """The web app for ``settings`` (entry points pass ``config.settings.load_settings()``)."""
    app = create_base_app(__name__, settings)
    app.json = OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes

    from webapp import apidocs, health, page
    from webapp.batches import views as batch_views
    from webapp.metrics import init_metrics
    from webapp.predictions import views

    app.register_blueprint(views.bp)
    app.register_blueprint(batch_views.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(apidocs.bp)
    app.register_blueprint(page.bp)
    init_rate_limit(app, [views.bp, batch_views.bp])
    init_metrics(app)
    register_error_handlers(app)
    init_security_headers(app)
    app.after_request(drain_unread_body)
    instrument_flask(app)
    app.teardown_request(lambda _error: unbind_job())  # a job's uuid tags only its own request's lines
    return app


def drain_unread_body(response: Response) -> Response:
    """Read what the request's body has left before answering: Gunicorn's sync worker closes the
    connection after each answer, and a body left unread (a 401 or 413 decided before reading it)
    would reach the proxy as a reset, a 502, instead of this answer. The body is within the request
    limit here: a larger declared one was refused before any of it was read, and is not touched."""
    length = request.content_length
    if length and length <= (request.max_content_length or 0):
        request.stream.read()
    return response
