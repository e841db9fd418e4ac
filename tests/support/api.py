"""Talking to a running service over HTTP: post an image, wait for its prediction."""

import base64
import json
from pathlib import Path

import requests

from tests.conftest import SAMPLES
from tests.support.polling import until

ELEPHANTS = {"tusker", "African_elephant", "Indian_elephant"}
POLL_TIMEOUT = 180


def post(base_url: str, path: Path, content_type="text/plain") -> requests.Response:
    body = '{"name": "%s", "data": "%s"}' % (path.name, base64.b64encode(path.read_bytes()).decode())
    return requests.post(f"{base_url}/inference/image", data=body, headers={"Content-Type": content_type}, timeout=30)


def wait_for_result(base_url: str, prediction_uuid: str) -> dict:
    def ended():
        response = requests.get(f"{base_url}/predictions/{prediction_uuid}", timeout=10)
        if response.status_code == 202:
            assert response.headers["Retry-After"]
            return None
        assert response.status_code == 200, response.text
        return response.json()

    return until(ended, f"{prediction_uuid} ended", POLL_TIMEOUT)


def classify(base_url: str, path: Path) -> dict:
    response = post(base_url, path)
    assert response.status_code == 202, response.text
    return wait_for_result(base_url, response.json()["uuid"])


def upload(name="elephant.jpg", **fields) -> str:
    return json.dumps({"name": name, "data": base64.b64encode((SAMPLES / name).read_bytes()).decode(), **fields})
