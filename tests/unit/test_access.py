"""Access control: API keys on the prediction routes, and the optional per-client rate limit."""

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


@pytest.mark.parametrize("path", ["/health", "/openapi.json", "/docs"])
def test_health_and_the_api_description_stay_open(keyed_client, path):
    assert keyed_client.get(path).status_code == 200


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


def test_rate_limit_is_off_by_default(client):
    assert all(client.get("/predictions/abc").status_code == 404 for _ in range(50))


def test_a_malformed_rate_limit_stops_the_app_at_start(make_app):
    with pytest.raises(ValueError):
        make_app(RATE_LIMIT="lots per minute")
