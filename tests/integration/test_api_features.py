"""The API's integration features on the real deployment (Gunicorn, MariaDB, RabbitMQ, the real worker):
binary uploads as curl sends them, idempotent retries, cancelling behind a backlog, provenance, retention."""

import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import bindparam, create_engine, text

from deploy.harness import (
    Process,
    create_database,
    deployment_env,
    drop_database,
    free_port,
    launch_worker,
)
from tests.conftest import SAMPLES
from tests.support.api import wait_for_result
from tests.support.polling import until
from tests.support.services import service_missing

ELEPHANT = SAMPLES / "elephant.jpg"
BMW = SAMPLES / "bmw.png"
DRAIN_TIMEOUT = 240
BACKLOG = 300


def curl(*args) -> tuple[int, dict]:
    """Run curl as a user would; returns (status, JSON body)."""
    result = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *map(str, args)], capture_output=True, text=True, check=True, timeout=60
    )
    body, status = result.stdout.rsplit("\n", 1)
    return int(status), json.loads(body)


def query(env: dict, sql: str, **params) -> list[dict]:
    engine = create_engine(env["DATABASE_URL"])
    with engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(text(sql), params).mappings()]
    engine.dispose()
    return rows


def stored_files(env: dict) -> set[Path]:
    return {path for path in (Path(env["INSTANCE_PATH"]) / "images").rglob("*") if path.is_file()}


# --- binary uploads ---------------------------------------------------------------------------------


def test_multipart_upload_with_curl_is_classified(base_url, service_env):
    status, body = curl("-X", "POST", f"{base_url}/inference/image", "-F", f"image=@{ELEPHANT}", "-F", "name=jumbo")
    assert status == 202, body
    result = wait_for_result(base_url, body["uuid"])
    assert result["status"] == "done" and result["prediction"] in {"tusker", "African_elephant", "Indian_elephant"}
    [row] = query(service_env, "SELECT name, image_url FROM predictions WHERE uuid = :u", u=body["uuid"])
    assert row["name"] == "jumbo"
    assert Path(row["image_url"].removeprefix("file://")).read_bytes() == ELEPHANT.read_bytes()


def test_raw_upload_with_curl_is_classified_and_named_by_query_or_header(base_url, service_env):
    status, body = curl(
        "-X",
        "POST",
        f"{base_url}/inference/image?name=car.png",
        "-H",
        "Content-Type: image/png",
        "--data-binary",
        f"@{BMW}",
    )
    assert status == 202, body
    assert wait_for_result(base_url, body["uuid"])["prediction"] == "convertible"
    status, by_header = curl(
        "-X",
        "POST",
        f"{base_url}/inference/image",
        "-H",
        "Content-Type: image/jpeg",
        "-H",
        "X-Image-Name: from-header.jpg",
        "--data-binary",
        f"@{ELEPHANT}",
    )
    assert status == 202
    names = query(
        service_env, "SELECT uuid, name FROM predictions WHERE uuid IN (:a, :b)", a=body["uuid"], b=by_header["uuid"]
    )
    assert {row["uuid"]: row["name"] for row in names} == {
        body["uuid"]: "car.png",
        by_header["uuid"]: "from-header.jpg",
    }


def test_binary_refusals_are_problems_through_gunicorn(base_url):
    status, body = curl("-X", "POST", f"{base_url}/inference/image", "-F", "name=no-image")
    assert (status, body["status"]) == (422, 422) and "exactly one 'image' file part" in body["detail"]
    status, body = curl(
        "-X", "POST", f"{base_url}/inference/image", "-H", "Content-Type: application/xml", "--data-binary", "<a/>"
    )
    assert status == 415 and "not taken" in body["detail"]
    too_big = b"\xff\xd8" + os.urandom(1024 * 1024)
    response = requests.post(
        f"{base_url}/inference/image", data=too_big, headers={"Content-Type": "image/jpeg"}, timeout=30
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"


# --- idempotency --------------------------------------------------------------------------------------


def test_a_retried_post_with_its_key_gets_the_same_job_and_one_row(base_url, service_env):
    headers = {"Idempotency-Key": f"retry-{time.time_ns()}"}
    files_before = stored_files(service_env)
    answers = [
        requests.post(
            f"{base_url}/inference/image",
            files={"image": ("e.jpg", ELEPHANT.read_bytes())},
            headers=headers,
            timeout=30,
        )
        for _ in range(3)
    ]
    assert [answer.status_code for answer in answers] == [202] * 3
    assert len({answer.json()["uuid"] for answer in answers}) == 1
    assert len(stored_files(service_env) - files_before) == 1
    other = requests.post(
        f"{base_url}/inference/image", files={"image": ("b.png", BMW.read_bytes())}, headers=headers, timeout=30
    )
    assert other.status_code == 422
    assert "different image or name" in other.json()["detail"]
    upper = requests.post(
        f"{base_url}/inference/image",
        files={"image": ("b.png", BMW.read_bytes())},
        headers={"Idempotency-Key": headers["Idempotency-Key"].upper()},
        timeout=30,
    )
    assert upper.status_code == 202, "keys are case-sensitive on MariaDB too"


def test_concurrent_posts_with_one_key_make_one_job(base_url, service_env):
    key = f"race-{time.time_ns()}"
    image = ELEPHANT.read_bytes()
    files_before = stored_files(service_env)

    def post(_):
        return requests.post(
            f"{base_url}/inference/image",
            data=image,
            headers={"Content-Type": "image/jpeg", "Idempotency-Key": key, "X-Image-Name": "race.jpg"},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(post, range(8)))
    assert [answer.status_code for answer in answers] == [202] * 8
    uuids = {answer.json()["uuid"] for answer in answers}
    assert len(uuids) == 1
    [job] = uuids
    assert query(service_env, "SELECT prediction_uuid FROM idempotency_keys WHERE `key` = :k", k=key) == [
        {"prediction_uuid": job}
    ]
    assert len(query(service_env, "SELECT uuid FROM predictions WHERE name = 'race.jpg'")) == 1
    assert [path.name for path in stored_files(service_env) - files_before] == [f"{job}.jpg"], (
        "the losers' images were removed"
    )
    assert wait_for_result(base_url, job)["status"] == "done"


# --- provenance -----------------------------------------------------------------------------------------


def test_results_record_the_model_files_that_produced_them(base_url, service_env):
    from models.litert import converted_path
    from models.weights import locate_model_files

    files = locate_model_files(service_env.get("MODEL_WEIGHTS_PATH", ""))
    converted = converted_path(files, Path(service_env["INSTANCE_PATH"]) / "model-cache")
    expected = {
        "name": "mobilenet_v1_0.75_224",
        "runtime": "litert",
        "weights_sha256": hashlib.sha256(files.weights.read_bytes()).hexdigest()[:16],
        "converted_sha256": hashlib.sha256(converted.read_bytes()).hexdigest()[:16],
    }
    status, body = curl("-X", "POST", f"{base_url}/inference/image", "-F", f"image=@{BMW}")
    result = wait_for_result(base_url, body["uuid"])
    assert result["model"] == expected
    [row] = query(service_env, "SELECT created_at, finished_at FROM predictions WHERE uuid = :u", u=body["uuid"])
    assert row["created_at"] < row["finished_at"]
    assert result["finished_at"] == row["finished_at"].isoformat(timespec="microseconds") + "Z"

    workers = requests.get(f"{base_url}/health", timeout=5).json()["workers"]
    assert [worker["model"] for worker in workers] == [expected]
    assert workers[0]["hostname"].startswith("worker-")


# --- a deployment of its own: cancelling behind a backlog, retention ---------------------------------


@pytest.fixture(scope="module")
def own(tmp_path_factory, new_queue):
    """Gunicorn on its own database and queue, its worker started by the tests (``own.start_worker``)."""
    try:
        database_url = create_database("imgsvc_api")
    except Exception as error:
        service_missing("MariaDB", error)
    instance, logs = tmp_path_factory.mktemp("api-instance"), tmp_path_factory.mktemp("api-logs")
    env = deployment_env(instance, database_url, new_queue(), RETENTION_DAYS="7", ORPHAN_GRACE_SECONDS="600")
    port = free_port()
    web = Process(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", "wsgi:app"],
        env,
        logs / "web.log",
    )
    deployment = Deployment(f"http://127.0.0.1:{port}", env, logs)
    try:
        deployment.wait_healthy(web)
        yield deployment
    finally:
        web.stop()
        if deployment.worker is not None:
            deployment.worker.stop()
        drop_database(database_url)


class Deployment:
    def __init__(self, url, env, logs):
        self.url, self.env, self.logs, self.worker = url, env, logs, None

    def wait_healthy(self, web):
        def healthy():
            try:
                return requests.get(f"{self.url}/health", timeout=5).status_code == 200
            except requests.RequestException:  # not listening yet, or still booting
                return False

        until(healthy, lambda: f"a healthy web:\n{web.output()[-3000:]}", 120, interval=0.2)

    def start_worker(self) -> Process:
        if self.worker is None:
            self.worker = launch_worker(self.env, self.logs)
        return self.worker

    def wait_until(self, sql: str, expected, timeout: float = DRAIN_TIMEOUT):
        def worker_log():
            return f"{sql} -> {query(self.env, sql)}\n{self.worker.output()[-3000:] if self.worker else ''}"

        until(lambda: query(self.env, sql) == expected, worker_log, timeout, interval=0.5)


def test_a_job_cancelled_behind_a_backlog_is_never_classified(own):
    """Runs first in this module: the backlog is queued before the worker exists."""
    image = ELEPHANT.read_bytes()

    def post(i):
        response = requests.post(
            f"{own.url}/inference/image?name=backlog-{i}.jpg",
            data=image,
            headers={"Content-Type": "image/jpeg"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        return response.json()["uuid"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        jobs = list(pool.map(post, range(BACKLOG)))
    doomed = jobs[-10]
    worker = own.start_worker()  # the worker starts on the backlog while the cancel goes in
    cancelled = requests.delete(f"{own.url}/predictions/{doomed}", timeout=10)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"uuid": doomed, "status": "cancelled"}

    own.wait_until(
        "SELECT status, COUNT(*) AS n FROM predictions GROUP BY status ORDER BY status",
        [{"status": "cancelled", "n": 1}, {"status": "done", "n": BACKLOG - 1}],
    )
    [row] = query(
        own.env, "SELECT status, prediction, finished_at, model_name FROM predictions WHERE uuid = :u", u=doomed
    )
    assert row == {"status": "cancelled", "prediction": None, "finished_at": None, "model_name": None}
    assert requests.get(f"{own.url}/predictions/{doomed}", timeout=10).json() == cancelled.json()
    assert f"prediction {jobs[-1]} recorded: " in worker.output(), "the worker logs each job it classifies"
    assert f"prediction {doomed} recorded" not in worker.output(), "never classified"
    assert f"prediction {doomed} already cancelled" in worker.output(), "its message was taken and skipped"
    again = requests.delete(f"{own.url}/predictions/{doomed}", timeout=10)
    assert (again.status_code, again.json()) == (200, cancelled.json())
    ended = requests.delete(f"{own.url}/predictions/{jobs[0]}", timeout=10)
    assert ended.status_code == 409 and "already ended (done)" in ended.json()["detail"]


def test_retention_purges_old_jobs_their_files_and_old_orphans_and_nothing_newer(own):
    from deploy.harness import app_for

    own.start_worker().wait_for(" ready.")
    jobs = [
        requests.post(
            f"{own.url}/inference/image?name=r{i}.png",
            data=BMW.read_bytes(),
            headers={"Content-Type": "image/png", "Idempotency-Key": f"retention-{i}"},
            timeout=30,
        ).json()["uuid"]
        for i in range(6)
    ]
    for job in jobs:
        wait_for_result(own.url, job)
    old, recent = jobs[:3], jobs[3:]
    engine = create_engine(own.env["DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE predictions SET created_at = created_at - INTERVAL 8 DAY WHERE uuid IN :old").bindparams(
                bindparam("old", expanding=True)
            ),
            {"old": old},
        )
        connection.execute(
            text("UPDATE predictions SET created_at = created_at - INTERVAL 6 DAY WHERE uuid = :u"), {"u": recent[0]}
        )
    engine.dispose()
    paths = {
        row["uuid"]: Path(row["image_url"].removeprefix("file://"))
        for row in query(own.env, "SELECT uuid, image_url FROM predictions")
    }
    images = Path(own.env["INSTANCE_PATH"]) / "images" / "zz"
    images.mkdir(exist_ok=True)
    old_orphan, new_orphan = images / "zz-old-orphan.png", images / "zz-new-orphan.png"
    for orphan in (old_orphan, new_orphan):
        orphan.write_bytes(b"left behind")
    an_hour_ago = time.time() - 3600
    os.utime(old_orphan, (an_hour_ago, an_hour_ago))

    app = app_for(own.env)
    assert app.extensions["celery"].send_task("purge_expired")  # run by the real worker, as beat would

    own.wait_until(
        "SELECT COUNT(*) AS n FROM predictions WHERE uuid IN ('%s')" % "', '".join(old), [{"n": 0}], timeout=60
    )
    until(lambda: not old_orphan.exists(), lambda: f"the old orphan deleted:\n{own.worker.output()[-3000:]}", 30)
    assert set(recent) <= {row["uuid"] for row in query(own.env, "SELECT uuid FROM predictions")}
    assert not any(paths[job].exists() for job in old)
    assert all(paths[job].exists() for job in recent)
    assert new_orphan.exists(), "an orphan younger than ORPHAN_GRACE_SECONDS may still be an upload in progress"
    assert [row["key"] for row in query(own.env, "SELECT `key` FROM idempotency_keys ORDER BY `key`")] == [
        f"retention-{i}" for i in range(3, 6)
    ]
    assert requests.get(f"{own.url}/predictions/{old[0]}", timeout=10).status_code == 404
    assert "retention removed 3 jobs" in own.worker.output()


def test_health_lists_the_running_worker_until_it_stops(own):
    own.start_worker().wait_for(" ready.")
    [worker] = requests.get(f"{own.url}/health", timeout=5).json()["workers"]
    assert worker["model"]["name"] == "mobilenet_v1_0.75_224"
    own.worker.stop()  # a clean stop (SIGTERM) removes the worker's row
    assert requests.get(f"{own.url}/health", timeout=5).json()["workers"] == []
