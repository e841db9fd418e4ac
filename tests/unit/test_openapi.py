"""The OpenAPI document is valid, served, matches the routes, and has a docs page that works offline."""

import re

import jsonschema
import pytest
from openapi_spec_validator import validate

from webapp import apidocs
from webapp.apidocs import load_spec

# Not part of the JSON API: its description, the web page and the Prometheus endpoint.
UNDOCUMENTED_ENDPOINTS = {"static", "apidocs.openapi", "apidocs.docs", "apidocs.asset", "page.index", "metrics.metrics"}


def test_the_document_is_valid_openapi_3():
    validate(load_spec())


def test_the_document_is_served_at_openapi_json(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == load_spec()


def _shape(path: str) -> str:
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def test_every_route_is_documented_and_every_documented_operation_exists(app):
    routes = {
        (_shape(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in UNDOCUMENTED_ENDPOINTS
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(_shape(path), method) for path, operations in load_spec()["paths"].items() for method in operations}
    assert routes == documented


def test_the_docs_page_loads_everything_from_this_service(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html
    assert "<script>" not in html, "no inline script: the CSP allows none"
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert links and all(link.startswith(("/docs/assets/", "/static/")) for link in links), links
    for link in links:
        assert client.get(link).status_code == 200, link


@pytest.mark.parametrize(
    "name",
    [
        "index.html",
        "oauth2-redirect.html",
        "swagger-initializer.js",
        "swagger-ui.js",
        "swagger-ui-bundle.js.map",
        "LICENSE",
        "VERSION",
        "../swagger-ui/index.html",
        "%2e%2e/VERSION",
        "favicon-16x16.png",
    ],
)
def test_only_the_pages_own_swagger_ui_files_are_served(client, name):
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_without_swagger_ui_installed_docs_says_how_to_get_it(client, monkeypatch, tmp_path):
    monkeypatch.setattr(apidocs, "SWAGGER_UI_DIR", tmp_path / "absent")
    response = client.get("/docs")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert "make install" in response.get_json()["detail"]
    assert client.get("/openapi.json").status_code == 200


def test_a_problem_matches_the_documented_shape(client):
    problem_schema = load_spec()["components"]["schemas"]["Problem"]
    response = client.post("/inference/image", data="[]")
    jsonschema.validate(response.get_json(), problem_schema)
