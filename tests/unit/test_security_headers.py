"""Every response carries the security headers: API answers, problem documents, the page and /docs."""

import pytest

from tests.conftest import b64, image_bytes
from webapp.security import SECURITY_HEADERS


def assert_secured(response):
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


def test_the_policy_forbids_framing_plugins_and_foreign_sources():
    csp = dict(directive.split(" ", 1) for directive in SECURITY_HEADERS["Content-Security-Policy"].split("; "))
    assert csp["default-src"] == "'self'"
    assert csp["frame-ancestors"] == csp["object-src"] == csp["base-uri"] == "'none'"
    assert "unsafe-inline" not in SECURITY_HEADERS["Content-Security-Policy"]
    assert "unsafe-eval" not in SECURITY_HEADERS["Content-Security-Policy"]


def test_an_api_response_has_the_headers(client):
    response = client.post("/inference/image", data=f'{{"data": "{b64(image_bytes())}"}}')
    assert response.status_code == 202
    assert_secured(response)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/inference/image", 400),  # refused upload: ApiError
        ("GET", "/no/such/page", 404),  # routing error: HTTPException
        ("DELETE", "/health", 405),
    ],
)
def test_an_error_response_has_the_headers(client, method, path, status):
    response = client.open(path, method=method, data="")
    assert response.status_code == status and response.mimetype == "application/problem+json"
    assert_secured(response)


def test_an_unexpected_error_has_the_headers(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert_secured(response)


@pytest.mark.parametrize("path", ["/", "/docs", "/static/app.js", "/docs/assets/swagger-ui-bundle.js"])
def test_the_page_the_docs_and_their_files_have_the_headers(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert_secured(response)
    response.close()
