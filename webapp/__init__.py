"""The web application: request → validate → store image → record row → enqueue.

It publishes jobs by task name (``jobs.queue``) and never imports the worker
package ``tasks``; it never loads the model either.
"""

from flask import Flask

from config.logging import unbind_job
from jobs.app import create_base_app
from webapp.errors import register_error_handlers
from webapp.jsonprovider import OrjsonProvider
from webapp.ratelimit import init_rate_limit
from webapp.security import init_security_headers


def create_app(test_config: dict | None = None) -> Flask:
    app = create_base_app(__name__, test_config)
    app.json = OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = app.extensions["settings"].max_request_bytes

    from webapp import apidocs, health, page
    from webapp.metrics import init_metrics
    from webapp.predictions import views

    app.register_blueprint(views.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(apidocs.bp)
    app.register_blueprint(page.bp)
    init_rate_limit(app, views.bp)
    init_metrics(app)
    register_error_handlers(app)
    init_security_headers(app)
    app.teardown_request(lambda _error: unbind_job())  # a job's uuid tags only its own request's lines
    return app
