"""Batches beyond the basics, for real: the completion webhook, API keys, the S3 store, the client's resume."""

import json

import boto3
import pytest
import requests
from sqlalchemy import create_engine, text

from deploy.harness import deployment_env, running_service, running_web, start_webhook_worker
from jobs.signing import SIGNATURE_HEADER, verify
from tests.conftest import SHARED_IMAGES
from tests.support.batches import images, post_multipart, results, run_client, tar_bytes, wait_until_done
from tests.support.polling import until
from tests.support.webhook_receiver import Receiver

SECRET = "batch-webhook-secret"
KEYS = ("batch-key-a", "batch-key-b")
DEADLINE = 120


@pytest.fixture(scope="module")
def keyed_env(tmp_path_factory, mysql_url, new_queue):
    return deployment_env(
        tmp_path_factory.mktemp("batch-features"),
        mysql_url,
        new_queue(),
        API_KEYS=",".join(KEYS),
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_ALLOW_PRIVATE="1",
        WEBHOOK_FIRST_RETRY="1",
    )


@pytest.fixture(scope="module")
def keyed_service(keyed_env, tmp_path_factory):
    logs = tmp_path_factory.mktemp("batch-features-logs")
    with running_service(keyed_env, logs) as (base_url, _, _):
        webhooks = start_webhook_worker(keyed_env, logs)
        try:
            yield base_url
        finally:
            webhooks.stop()


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_one_signed_webhook_when_the_batch_completes(keyed_service, keyed_env):
    receiver = Receiver(statuses=(500, 200))  # the first attempt fails: retried as a job's webhook is
    try:
        pairs = images(12)
        response = post_multipart(keyed_service, pairs, {"callback_url": receiver.url}, headers=auth(KEYS[0]))
        assert response.status_code == 202, response.text
        batch_id = response.json()["id"]
        until(lambda: len(receiver.received) >= 2, "the batch webhook's two attempts", DEADLINE)
        batch = requests.get(f"{keyed_service}/batches/{batch_id}", headers=auth(KEYS[0]), timeout=10).json()
        for delivery in receiver.received:
            assert verify(SECRET, delivery["body"], delivery["headers"][SIGNATURE_HEADER])
            assert delivery["headers"]["X-Webhook-Id"] == batch_id
            assert json.loads(delivery["body"]) == batch
        assert [d["headers"]["X-Webhook-Attempt"] for d in receiver.received] == ["1", "2"]
        assert batch["status"] == "completed" and batch["request_counts"]["done"] == len(pairs)
        engine = create_engine(keyed_env["DATABASE_URL"])
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT webhook_attempts, webhook_status_code FROM batches WHERE id = :id"), {"id": batch_id}
            ).one()
        engine.dispose()
        assert tuple(row) == (2, 200)
        assert len(receiver.received) == 2
    finally:
        receiver.close()


def test_a_batch_belongs_to_its_key(keyed_service):
    pairs = images(3)
    assert post_multipart(keyed_service, pairs).status_code == 401
    batch_id = post_multipart(keyed_service, pairs, headers=auth(KEYS[0])).json()["id"]
    for path in (f"/batches/{batch_id}", f"/batches/{batch_id}?wait=1", f"/batches/{batch_id}/results"):
        assert requests.get(f"{keyed_service}{path}", headers=auth(KEYS[1]), timeout=10).status_code == 404, path
        assert requests.get(f"{keyed_service}{path}", headers=auth(KEYS[0]), timeout=10).status_code == 200, path
    assert requests.delete(f"{keyed_service}/batches/{batch_id}", headers=auth(KEYS[1]), timeout=10).status_code == 404
    assert wait_until_done(keyed_service, batch_id, headers=auth(KEYS[0]))["status"] == "completed"


def test_a_batch_on_the_s3_store_is_one_object_read_by_ranges(s3_base_url, s3_service_env):
    pairs = images(40)
    response = requests.post(
        f"{s3_base_url}/batches", data=tar_bytes(pairs), headers={"Content-Type": "application/x-tar"}, timeout=120
    )
    assert response.status_code == 202, response.text
    batch_id = response.json()["id"]
    batch = wait_until_done(s3_base_url, batch_id)
    assert batch["request_counts"]["done"] == len(pairs)
    assert [line["name"] for line in results(s3_base_url, batch_id)] == [f"photos/{name}" for name, _ in pairs]
    bucket = s3_service_env["IMAGE_STORE_URL"].split("/")[2]
    s3 = boto3.client("s3", endpoint_url=s3_service_env["S3_ENDPOINT_URL"])
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="uploads/")["Contents"]]
    assert f"uploads/{batch_id}.batch" in keys
    assert not any(key.startswith("uploads/") and key.endswith(".jpg") and batch_id in key for key in keys)
    engine = create_engine(s3_service_env["DATABASE_URL"])
    with engine.connect() as connection:
        url = connection.execute(
            text("SELECT image_url FROM predictions WHERE batch_id = :id AND batch_index = 3"), {"id": batch_id}
        ).scalar_one()
    engine.dispose()
    assert url.startswith(f"s3://{bucket}/uploads/{batch_id}.batch#")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_the_client_resumes_from_its_results_file(base_url, tmp_path, suffix):
    folder = tmp_path / "photos"
    folder.mkdir()
    lines = (SHARED_IMAGES / "labels.csv").read_text().splitlines()
    (folder / "labels.csv").write_text("\n".join(lines[:31]) + "\n")
    names = [line.split(",")[0] for line in lines[1:31]]
    for name in names[:20]:
        (folder / name).write_bytes((SHARED_IMAGES / name).read_bytes())
    out = tmp_path / f"results{suffix}"

    first = run_client(folder, "--url", base_url, "--out", out, "--batch-size", "8", "--in-flight", "2", timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "20/20 classified" in first.stdout and "top-1 accuracy: " in first.stdout
    assert "classifying" in first.stderr  # the progress bar
    for name in names[20:]:  # more photos arrive; the run is repeated
        (folder / name).write_bytes((SHARED_IMAGES / name).read_bytes())
    second = run_client(folder, "--url", base_url, "--out", out, "--batch-size", "8", timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "30/30 classified" in second.stdout and "20 skipped as already in" in second.stdout
    from client.batches import read_results

    records = read_results(out)
    assert sorted(record["name"] for record in records) == sorted(names)  # each image once
    assert all(record["status"] == "done" and record["top5"][0]["label"] for record in records)
    assert "/30 (" in second.stdout.split("top-1 accuracy: ")[1]


def test_the_client_waits_out_the_rate_limit(service, service_env, tmp_path):
    """Batches spend the API's RATE_LIMIT like single images; the client waits as Retry-After says."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted(SHARED_IMAGES.glob("*.JPEG"))[:6]:
        (folder / path.name).write_bytes(path.read_bytes())
    logs = tmp_path / "logs"
    logs.mkdir()
    with running_web({**service_env, "RATE_LIMIT": "1/second"}, logs) as (limited_url, _, _):
        run = run_client(folder, "--url", limited_url, "--batch-size", "2", "--in-flight", "3", timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "6/6 classified" in run.stdout
    assert "rate limited (429)" in run.stderr, "the limit never bit: nothing was shown"
