"""Access control: API keys on the prediction routes and /metrics, and the optional per-client rate limit."""

import io

import pytest

from tests.conftest import b64, image_bytes

KEYS = ("first-key-0123456789", "second-key-abcdefghij")
PROTECTED = [("post", "/inference/image"), ("get", "/predictions/1b4e28ba-2fa1-41d2-883f-0016d3cca427")]


def upload() -> dict:
    return {"name": "a.jpg", "data": b64(image_bytes())}


@pytest.fixture
def keyed_client(make_app):
    return make_app(API_KEYS=KEYS).test_client()


@pytest.mark.parametrize("method, path", PROTECTED)
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic Zmlyc3Qta2V5", "Bearer wrong", f"Bearer {KEYS[0]}x", f"Token {KEYS[0]}"],
)
def test_without_a_valid_key_the_api_answers_401_problem(keyed_client, published, method, path, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = getattr(keyed_client, method)(path, json=upload(), headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["status"] == 401
    assert published() == []


@pytest.mark.parametrize("key", KEYS)
def test_any_configured_key_opens_post_and_get(keyed_client, key):
    headers = {"Authorization": f"Bearer {key}"}
    response = keyed_client.post("/inference/image", json=upload(), headers=headers)
    assert response.status_code == 202
    assert keyed_client.get(response.headers["Location"], headers=headers).status_code == 202


def test_the_key_is_checked_before_the_body_is_read(keyed_client):
    response = keyed_client.post("/inference/image", data=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 401


JOB = "/predictions/1b4e28ba-2fa1-41d2-883f-0016d3cca427"
# Every route and whether it needs a key once API_KEYS is set (docs/operations.md, "API keys").
ROUTE_ACCESS = {
    ("POST", "/inference/image"): "key",
    ("GET", "/predictions/<prediction_uuid>"): "key",
    ("DELETE", "/predictions/<prediction_uuid>"): "key",
    ("GET", "/metrics"): "key",
    ("POST", "/batches"): "key",
    ("GET", "/batches/<batch_id>"): "key",
    ("GET", "/batches/<batch_id>/results"): "key",
    ("DELETE", "/batches/<batch_id>"): "key",
    ("GET", "/"): "open",
    ("GET", "/health"): "open",
    ("GET", "/openapi.json"): "open",
    ("GET", "/docs"): "open",
    ("GET", "/docs/assets/<path:filename>"): "open",
    ("GET", "/static/<path:filename>"): "open",
}
EXAMPLE_PATHS = {
    "/predictions/<prediction_uuid>": JOB,
    "/batches/<batch_id>": "/batches/1b4e28ba-2fa1-41d2-883f-0016d3cca427",
    "/batches/<batch_id>/results": "/batches/1b4e28ba-2fa1-41d2-883f-0016d3cca427/results",
    "/docs/assets/<path:filename>": "/docs/assets/swagger-ui.css",
    "/static/<path:filename>": "/static/app.js",
}


def test_every_route_has_its_access_decided(keyed_client):
    routes = {
        (method, rule.rule)
        for rule in keyed_client.application.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == set(ROUTE_ACCESS)


def body_for(method: str, rule: str) -> dict:
    """A body the route accepts: one image in a multipart batch, or a JSON upload."""
    if (method, rule) == ("POST", "/batches"):
        return {"data": {"image": (io.BytesIO(image_bytes()), "a.jpg")}, "content_type": "multipart/form-data"}
    return {"json": upload()} if method == "POST" else {}


@pytest.mark.parametrize("method, rule", list(ROUTE_ACCESS))
def test_each_route_both_ways(keyed_client, method, rule):
    path = EXAMPLE_PATHS.get(rule, rule)
    send = getattr(keyed_client, method.lower())
    without = send(path, **body_for(method, rule))
    with_key = send(path, headers={"Authorization": f"Bearer {KEYS[1]}"}, **body_for(method, rule))
    if ROUTE_ACCESS[method, rule] == "key":
        assert without.status_code == 401
        assert without.mimetype == "application/problem+json"
    else:
        assert without.status_code == 200
    assert with_key.status_code in (200, 202, 404), with_key.get_data(as_text=True)[:300]


def test_metrics_takes_its_own_key_when_one_is_set(make_app):
    client = make_app(API_KEYS=KEYS, METRICS_KEY="scraper-key-0123456789").test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {KEYS[0]}"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scraper-key-0123456789"}).status_code == 200
    assert (
        client.post(
            "/inference/image", json=upload(), headers={"Authorization": "Bearer scraper-key-0123456789"}
        ).status_code
        == 401
    )


def test_without_keys_metrics_is_open(client):
    assert client.get("/metrics").status_code == 200


def test_without_api_keys_no_key_is_needed(client):
    assert client.post("/inference/image", json=upload()).status_code == 202


def test_rate_limit_answers_429_problem_per_client(make_app):
    client = make_app(RATE_LIMIT="3/minute").test_client()
    statuses = [client.get("/predictions/abc").status_code for _ in range(3)]
    assert statuses == [404, 404, 404]

    response = client.post("/inference/image", json=upload())
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 429
    assert int(response.headers["Retry-After"]) > 0

    other = client.get("/predictions/abc", environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 404, "another client has its own budget"
    assert client.get("/health").status_code == 200, "health is never limited"


def test_batches_share_the_rate_limit_of_the_prediction_routes(make_app):
    client = make_app(RATE_LIMIT="2/minute").test_client()
    assert client.get("/predictions/abc").status_code == 404
    assert client.get("/batches/abc").status_code == 404
    refused = client.post("/batches", data=b"", content_type="application/x-tar")
    assert refused.status_code == 429, "a batch spends the same budget as single images"
    assert client.get("/predictions/abc").status_code == 429


def test_rate_limit_is_off_by_default(client):
    assert all(client.get("/predictions/abc").status_code == 404 for _ in range(50))


def test_a_malformed_rate_limit_stops_the_app_at_start(make_app):
    with pytest.raises(ValueError):
        make_app(RATE_LIMIT="lots per minute")
