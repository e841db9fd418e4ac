"""Every malformed upload gets a 4xx problem document that names the problem, and no uuid."""

import base64
import io
import json
import time

import jsonschema
import pytest
from PIL import Image, ImageFile

from tests.conftest import b64, image_bytes
from tests.support.request_bodies import CountingBody, post_stream
from webapp.apidocs import load_spec

JPEG = image_bytes()
TRUNCATED_JPEG = image_bytes(size=(400, 300))[:600]
DEPTH = 100_000
PROBLEM_SCHEMA = load_spec()["components"]["schemas"]["Problem"]


def blank_png(size) -> bytes:
    """A one-bit PNG: many pixels, few bytes, made without an RGB copy in memory."""
    buffer = io.BytesIO()
    Image.new("1", size, 0).save(buffer, "PNG")
    return buffer.getvalue()


def body(**fields) -> str:
    return json.dumps(fields)


CASES = [
    # (case, raw body, status, words the detail must contain)
    ("empty body", "", 400, "empty"),
    ("not JSON", "name=a&data=b", 400, "not valid JSON"),
    ("JSON array", "[1, 2]", 400, "JSON object"),
    ("JSON string", '"hello"', 400, "JSON object"),
    ("JSON null", "null", 400, "JSON object"),
    ("invalid UTF-8", b'{"name": "\xff\xfe", "data": "x"}', 400, "UTF-8"),
    ("lone surrogate in name", '{"name": "\\ud800", "data": "x"}', 400, "surrogate"),
    ("deeply nested array", "[" * DEPTH, 400, "depth limit exceeded"),
    ("deeply nested object", '{"a":' * DEPTH + "1" + "}" * DEPTH, 400, "depth limit exceeded"),
    ("data missing", body(name="a.jpg"), 422, "'data' is missing"),
    ("data null", body(name="a.jpg", data=None), 422, "'data' is missing"),
    ("data not a string", body(name="a.jpg", data=123), 422, "'data' must be a base64 string"),
    ("data empty", body(name="a.jpg", data=""), 422, "empty"),
    ("data only whitespace", body(name="a.jpg", data=" \r\n\t "), 422, "empty"),
    ("invalid base64", body(name="a.jpg", data="not*base64!"), 422, "not valid base64"),
    ("base64 padding inside", body(name="a.jpg", data="QUJD=QUJD"), 422, "not valid base64"),
    ("base64 with a lone char", body(name="a.jpg", data="QUJDR"), 422, "not valid base64"),
    ("not an image", body(name="a.txt", data=b64(b"hello, world" * 10)), 415, "not a supported image format"),
    ("truncated image", body(name="a.jpg", data=b64(TRUNCATED_JPEG)), 422, "truncated or damaged"),
    (
        "unsupported format",
        body(name="a.ico", data=b64(image_bytes(fmt="ICO", size=(32, 32)))),
        415,
        "not a supported image format",
    ),
    ("name not a string", body(name=42, data=b64(JPEG)), 422, "'name' must be a string"),
    ("name null", body(name=None, data=b64(JPEG)), 422, "'name' must be a string"),
    ("name too long", body(name="n" * 256, data=b64(JPEG)), 422, "'name' is longer"),
    ("image over 1 MiB", body(name="big.bmp", data=b64(b"BM" + bytes(1024 * 1024))), 413, "larger than 1048576"),
    (
        "pixel count over the limit",
        body(name="wide.png", data=b64(blank_png((8000, 6000)))),
        422,
        "the limit is 12582912 pixels",
    ),
    ("body over the limit", b"x" * (2 * 1024 * 1024), 413, "exceeds the capacity limit"),
]


@pytest.mark.parametrize("case, raw, status, words", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_malformed_upload_is_refused_with_a_clear_problem(client, published, case, raw, status, words, content_type):
    response = client.post("/inference/image", data=raw, content_type=content_type)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    jsonschema.validate(problem, PROBLEM_SCHEMA)
    assert problem["status"] == status
    assert words in problem["detail"]
    assert "uuid" not in problem
    assert published() == []


def test_declared_body_over_the_limit_is_413_without_reading_it(client):
    hundred_mib = 100 * 1024 * 1024
    stream = CountingBody(hundred_mib)
    response = post_stream(client, stream, content_length=hundred_mib)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert stream.read_bytes == 0


def test_chunked_body_over_the_limit_is_413_after_reading_only_the_limit(app, client):
    stream = CountingBody(100 * 1024 * 1024)
    response = post_stream(client, stream, content_length=None)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert stream.read_bytes <= app.config["MAX_CONTENT_LENGTH"] + 64 * 1024


def test_huge_pixel_count_is_refused_cheaply_without_decoding(client, monkeypatch):
    bomb = blank_png((20000, 20000))
    assert len(bomb) < 100 * 1024
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image) or real_load(image))

    started = time.perf_counter()
    response = client.post("/inference/image", data=body(name="bomb.png", data=b64(bomb)))
    elapsed = time.perf_counter() - started

    assert response.status_code == 422
    assert "the limit is 12582912 pixels" in response.get_json()["detail"]
    assert decoded == [], "the pixel data must never be decoded"
    assert elapsed < 0.5


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda d: base64.encodebytes(d).decode(), id="line-wrapped"),
        pytest.param(lambda d: base64.urlsafe_b64encode(d).decode(), id="url-safe"),
        pytest.param(lambda d: base64.b64encode(d).decode().rstrip("="), id="unpadded"),
        pytest.param(lambda d: "data:image/jpeg;base64," + base64.b64encode(d).decode(), id="data-url"),
    ],
)
def test_common_base64_variants_are_accepted(client, encode):
    data = image_bytes(size=(301, 203))  # a length whose base64 needs padding
    response = client.post("/inference/image", data=body(name="a.jpg", data=encode(data)))
    assert response.status_code == 202, response.get_data(as_text=True)


def test_unexpected_errors_are_json_without_traceback(app, client, monkeypatch):
    def explode(*_):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.extensions["image_store"], "save", explode)
    response = client.post("/inference/image", data=body(name="a.jpg", data=b64(JPEG)))
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
