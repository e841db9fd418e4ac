"""Batches for real: nginx → Gunicorn → MariaDB rows → RabbitMQ → the worker, and the waiter for ``?wait``."""

import csv
import json
import time

import pytest
import requests

from tests.conftest import SHARED_IMAGES
from tests.support.batches import DEADLINE, images, post_multipart, results, tar_bytes, wait_until_done
from tests.support.hostile_images import CORPUS
from tests.support.polling import until

LABELS = {
    row["filename"]: row["label"] for row in csv.DictReader((SHARED_IMAGES / "labels.csv").read_text().splitlines())
}


def check_all_classified(base_url, batch_id, pairs):
    batch = wait_until_done(base_url, batch_id)
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {
        "total": len(pairs),
        "pending": 0,
        "done": len(pairs),
        "failed": 0,
        "cancelled": 0,
    }
    lines = results(base_url, batch_id)
    assert [line["name"].rsplit("/", 1)[-1] for line in lines] == [name for name, _ in pairs]  # submission order
    for line in lines:
        assert line["status"] == "done" and line["error"] is None
        assert line["prediction"] == line["top5"][0]["label"] and line["confidence"] == line["top5"][0]["score"]
    # Each image is an ordinary job too.
    sample = lines[len(lines) // 2]
    job = requests.get(f"{base_url}/predictions/{sample['uuid']}", timeout=10).json()
    assert job["status"] == "done" and job["prediction"] == sample["prediction"]
    # The model's answers, not just any: most of the labelled photos get their label.
    labelled = [
        (line, LABELS[name.split("-", 1)[1]])
        for line, (name, _) in zip(lines, pairs)
        if name.split("-", 1)[1] in LABELS
    ]
    right = sum(line["prediction"] == label for line, label in labelled)
    assert right >= 0.6 * len(labelled), f"{right}/{len(labelled)}"


def test_a_batch_of_200_by_multipart(base_url):
    pairs = images(200)
    response = post_multipart(base_url, pairs)
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"id", "status", "request_counts", "created_at"}
    assert body["status"] == "in_progress" and body["request_counts"]["total"] == 200
    assert response.headers["Location"] == f"/batches/{body['id']}"
    check_all_classified(base_url, body["id"], pairs)


def test_a_batch_of_200_by_tar(base_url):
    pairs = images(200)
    response = requests.post(
        f"{base_url}/batches", data=tar_bytes(pairs), headers={"Content-Type": "application/x-tar"}, timeout=120
    )
    assert response.status_code == 202, response.text
    check_all_classified(base_url, response.json()["id"], pairs)


def test_hostile_images_fail_with_their_reason_and_the_good_ones_complete(base_url):
    hostile = [item for item in CORPUS if item.expected in ("refused", "failed")]
    good = images(5)
    pairs = [*good, *((item.name, item.make()) for item in hostile)]
    response = post_multipart(base_url, pairs)
    assert response.status_code == 202, response.text
    refused = sum(item.expected == "refused" for item in hostile)
    assert response.json()["request_counts"]["failed"] == refused  # judged at once, as single uploads are
    batch = wait_until_done(base_url, response.json()["id"])
    assert batch["request_counts"]["done"] == len(good)
    assert batch["request_counts"]["failed"] == len(hostile)
    lines = {line["name"]: line for line in results(base_url, response.json()["id"])}
    for name, _ in good:
        assert lines[name]["status"] == "done"
    for item in hostile:
        line = lines[item.name]
        assert line["status"] == "failed" and line["error"], item.name
    # A refused image carries the very reason a single upload of it gets.
    random_bytes = next(item for item in hostile if item.name == "random_bytes").make()
    single = requests.post(
        f"{base_url}/inference/image?name=x",
        data=random_bytes,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert single.status_code == 415 and lines["random_bytes"]["error"] == single.json()["detail"]


def test_results_while_running_and_after_as_jsonl_and_csv(base_url):
    pairs = images(150)
    batch_id = post_multipart(base_url, pairs).json()["id"]
    seen_partial = False
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        state = requests.get(f"{base_url}/batches/{batch_id}", timeout=10).json()
        lines, rows = results(base_url, batch_id), results(base_url, batch_id, "csv")
        if state["completed_at"] is None:
            # Only ended images, in submission order, never more than have ended.
            order = [line["name"] for line in lines]
            assert order == sorted(order)
            assert len(lines) <= len(pairs)
            seen_partial |= 0 < len(lines) < len(pairs)
        else:
            break
        time.sleep(0.2)
    assert seen_partial, "no results were read while the batch ran"
    lines, rows = results(base_url, batch_id), results(base_url, batch_id, "csv")
    assert len(lines) == len(rows) == len(pairs)
    for line, row in zip(lines, rows):
        assert row["uuid"] == line["uuid"] and row["name"] == line["name"] and row["status"] == line["status"]
        assert row["prediction"] == line["prediction"]
        assert float(row["confidence"]) == pytest.approx(line["confidence"])
        assert json.loads(row["top5"]) == line["top5"] and row["error"] == ""


def test_cancel_in_the_middle(base_url):
    pairs = images(400)
    batch_id = post_multipart(base_url, pairs).json()["id"]
    until(
        lambda: requests.get(f"{base_url}/batches/{batch_id}", timeout=10).json()["request_counts"]["done"] >= 10,
        "ten images of the batch classified",
        DEADLINE,
        interval=0.05,
    )
    response = requests.delete(f"{base_url}/batches/{batch_id}", timeout=10)
    assert response.status_code == 200, response.text
    counts = response.json()["request_counts"]
    assert counts["cancelled"] > 0 and counts["done"] + counts["cancelled"] + counts["pending"] == len(pairs)
    batch = wait_until_done(base_url, batch_id)
    assert batch["status"] == "cancelled" and batch["request_counts"]["pending"] == 0
    assert batch["request_counts"]["done"] + batch["request_counts"]["cancelled"] == len(pairs)
    assert 10 <= batch["request_counts"]["done"] < len(pairs)
    again = requests.delete(f"{base_url}/batches/{batch_id}", timeout=10)  # idempotent
    assert again.status_code == 200 and again.json()["request_counts"] == batch["request_counts"]
    cancelled = [line for line in results(base_url, batch_id) if line["status"] == "cancelled"]
    assert len(cancelled) == batch["request_counts"]["cancelled"]
    assert requests.get(f"{base_url}/predictions/{cancelled[0]['uuid']}", timeout=10).json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"not a tar at all" * 64, "application/x-tar", 400),
        (
            b"--x\r\nContent-Disposition: form-data; name=image; filename=a\r\n\r\nabc",
            "multipart/form-data; boundary=x",
            400,
        ),
        (b"{}", "application/json", 415),
        (b"--x--\r\n", "multipart/form-data; boundary=x", 422),
    ],
)
def test_a_malformed_body_is_a_problem_and_stores_nothing(base_url, service_app, body, content_type, status):
    from jobs.batches import Batch
    from jobs.database import db

    with service_app.app_context():
        before = db.session.query(Batch).count()
    response = requests.post(f"{base_url}/batches", data=body, headers={"Content-Type": content_type}, timeout=10)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json" and response.json()["detail"]
    with service_app.app_context():
        assert db.session.query(Batch).count() == before


def test_unknown_batches_are_not_found(base_url):
    for path in ("/batches/nope", "/batches/4b4a63a5-4a0b-4b55-9f7a-8b8f0c39c6f1", "/batches/nope/results"):
        response = requests.get(f"{base_url}{path}", timeout=10)
        assert response.status_code == 404 and response.json()["status"] == 404
    assert requests.delete(f"{base_url}/batches/4b4a63a5-4a0b-4b55-9f7a-8b8f0c39c6f1", timeout=10).status_code == 404
