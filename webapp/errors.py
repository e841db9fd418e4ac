"""Every error is an RFC 9457 problem document, so clients parse one shape.

Unexpected exceptions become a bare 500 problem: the traceback goes to the log,
never to the client.
"""

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """A request we refuse, with the status and the sentence that says why."""

    def __init__(self, status: int, title: str, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}


def problem_document(status: int, title: str, detail: str) -> dict:
    """The RFC 9457 body; the waiter (aiohttp) sends the same one."""
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


def problem(status: int, title: str, detail: str, headers: dict | None = None):
    response = jsonify(problem_document(status, title, detail))
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    response.headers.update(headers or {})
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return problem(error.status, error.title, error.detail, error.headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        # Keep the exception's own headers (Allow on 405, Retry-After on 429), not its HTML type.
        headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
        return problem(error.code or 500, error.name, error.description or "", headers)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        app.logger.exception("unhandled error")
        return problem(500, "Internal Server Error", "The server failed to handle this request.")
