"""The service across hosts: web, two worker hosts and the services host, each its own network namespace.

Proves, over real network hops (see conftest.py for the hosts): the API contract on the S3 image store;
that both worker hosts take work; that unplugging a worker host under load loses nothing and writes no
row twice, and that the host rejoins by itself; that the worker hosts' own metrics add up to the
database; how long two worker hosts take to drain a backlog against one; and that a file:// store with
workers on another host fails saying why.

Tests run in file order on one deployment (a session fixture).
"""

import base64
import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from deploy.harness import app_for, create_database, deployment_env, queue_length, start_worker
from tests.conftest import SAMPLES, SHARED_IMAGES, scrape
from tests.support.api import ELEPHANTS, wait_for_result
from tests.support.job_rows import wait_until_finished
from tests.support.multihost_deployment import S3_CREDENTIALS, start_web, worker_env
from tests.support.polling import until
from tests.support.worker_logs import assert_recorded_exactly_once, query, recorded, recorded_per_host

BODIES = [
    json.dumps({"name": path.name, "data": base64.b64encode(path.read_bytes()).decode()})
    for path in sorted(SHARED_IMAGES.glob("*.JPEG"))
]
BACKLOG = 300  # jobs per drain measurement: a few seconds of work for one worker host
DRAIN_ROUNDS = 2
CUT_WAVE = 240
REJOIN_TIMEOUT = 90


def post(entry_url: str, body: str) -> str:
    response = requests.post(f"{entry_url}/inference/image", data=body, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["uuid"]


def post_many(entry_url: str, count: int, per_second: float | None = None) -> list[str]:
    """``count`` POSTs from 8 clients, at ``per_second`` in all (None: as fast as answered)."""
    started = time.monotonic()

    def one(index):
        if per_second:
            time.sleep(max(0.0, started + index / per_second - time.monotonic()))
        return post(entry_url, BODIES[index % len(BODIES)])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def drain_seconds(database_url: str, uuids: list[str]) -> float:
    """First result to last result of these jobs, from the rows' own timestamps."""
    wanted = set(uuids)
    times = [
        row.updated_at for row in query(database_url, "SELECT uuid, updated_at FROM predictions") if row.uuid in wanted
    ]
    return (max(times) - min(times)).total_seconds()


def assert_metrics_add_up(deployment) -> dict[str, float]:
    """Jobs done, summed over each worker host's own endpoint, equal the done rows in the database."""
    done = {
        name: scrape(worker.metrics_url)[("worker_jobs_recorded_total", (("status", "done"),))]
        for name, worker in deployment.workers.items()
    }
    [(in_database,)] = query(deployment.env["DATABASE_URL"], "SELECT COUNT(*) FROM predictions WHERE status='done'")
    assert sum(done.values()) == in_database, (done, in_database)
    return done


def test_contract_across_hosts_on_s3(deployment):
    urls = [
        deployment.entry_url,
        *(deployment.env[key] for key in ("DATABASE_URL", "CELERY_BROKER_URL", "S3_ENDPOINT_URL")),
    ]
    assert not [url for url in urls if "127.0.0.1" in url or "localhost" in url], "every hop is a network one"
    elephant = post(
        deployment.entry_url,
        json.dumps(
            {"name": "elephant.jpg", "data": base64.b64encode((SAMPLES / "elephant.jpg").read_bytes()).decode()}
        ),
    )
    result = wait_for_result(deployment.entry_url, elephant)
    assert result["status"] == "done" and result["prediction"] in ELEPHANTS
    [(image_url,)] = query(
        deployment.env["DATABASE_URL"], "SELECT image_url FROM predictions WHERE uuid=:u", u=elephant
    )
    assert image_url.startswith(deployment.env["IMAGE_STORE_URL"])
    for worker in deployment.workers.values():
        identity = [key for key in scrape(worker.metrics_url) if key[0] == "worker_model_info"]
        assert [dict(labels)["runtime"] for _, labels in identity] == ["litert"]


def test_unplugging_a_worker_host_loses_nothing_and_it_rejoins(deployment):
    a, b = deployment.workers["worker-a"], deployment.workers["worker-b"]
    database_url = deployment.env["DATABASE_URL"]
    with ThreadPoolExecutor(1) as load:
        wave = load.submit(post_many, deployment.entry_url, CUT_WAVE, 40)
        until(
            lambda: len(recorded(a)) >= 20 and len(recorded(b)) >= 20, "both worker hosts take work", 60, interval=0.2
        )
        a.host.cut()
        cut_at = time.monotonic()
        first_wave = wave.result()
        posted_for = time.monotonic() - cut_at
    finished = wait_until_finished(database_url, first_wave, timeout=180)
    done_after = time.monotonic() - cut_at
    assert set(finished.values()) == {"done"}, Counter(finished.values())
    union = sum(recorded_per_host(deployment).values(), Counter())
    assert {job: union[job] for job in first_wave if union[job] > 1} == {}, "a row written twice"
    print(
        f"\nworker-a unplugged mid-load: POSTs went on for {posted_for:.1f} s; all {len(first_wave)} jobs "
        f"done {done_after:.1f} s after the cut, worker-a still unplugged"
    )

    connections = a.process.output().count("Connected to amqp://")
    a.host.restore()
    restored_at = time.monotonic()
    until(
        lambda: a.process.output().count("Connected to amqp://") > connections,
        "worker-a reconnects to the broker by itself",
        REJOIN_TIMEOUT,
        interval=0.2,
    )
    print(f"worker-a reconnected {time.monotonic() - restored_at:.1f} s after its link came back")
    second_wave = post_many(deployment.entry_url, 120, 40)
    assert set(wait_until_finished(database_url, second_wave, timeout=180).values()) == {"done"}
    per_host = assert_recorded_exactly_once(deployment, first_wave + second_wave)
    for wave, jobs in (("before and during the cut", first_wave), ("after the link came back", second_wave)):
        shares = {name: len(counts.keys() & set(jobs)) for name, counts in per_host.items()}
        print(f"{wave}: {len(jobs)} jobs, recorded by {shares}")
    assert per_host["worker-a"].keys() & set(first_wave), "worker-a took part before the cut"
    assert per_host["worker-a"].keys() & set(second_wave), "worker-a takes work again after its link is back"
    print(f"jobs done by worker host, from their own /metrics: {assert_metrics_add_up(deployment)}")


def test_drain_time_two_worker_hosts_against_one(deployment):
    env = deployment.env
    queue, database_url = env["CELERY_QUEUE"], env["DATABASE_URL"]
    control = app_for(env).extensions["celery"].control
    pings = control.ping(timeout=5)
    nodes = {
        name: next(node for reply in pings for node in reply if node.startswith(f"{name}-"))
        for name in deployment.workers
    }

    def drain(consumers: list[str]) -> tuple[float, list[str]]:
        replies = control.cancel_consumer(queue, destination=list(nodes.values()), reply=True, timeout=5)
        assert len(replies) == len(nodes)
        backlog = post_many(deployment.entry_url, BACKLOG)
        until(lambda: queue_length(queue, env["CELERY_BROKER_URL"]) == BACKLOG, "the backlog queued", 30, interval=0.2)
        replies = control.add_consumer(queue, destination=[nodes[name] for name in consumers], reply=True, timeout=5)
        assert len(replies) == len(consumers)
        assert set(wait_until_finished(database_url, backlog, timeout=180).values()) == {"done"}
        return drain_seconds(database_url, backlog), backlog

    # Alternated, so a burst of other load on the machine does not favour one side; the best of each is kept.
    timings = {1: [], 2: []}
    for _ in range(DRAIN_ROUNDS):
        timings[1].append(drain(["worker-a"])[0])
        seconds, backlog = drain(["worker-a", "worker-b"])
        timings[2].append(seconds)
        per_host = assert_recorded_exactly_once(deployment, backlog)
        shares = {name: len(counts.keys() & set(backlog)) for name, counts in per_host.items()}
        assert all(shares.values()), shares
    one, two = min(timings[1]), min(timings[2])
    print(
        f"\nbacklog of {BACKLOG}, first result to last: one worker host {one:.2f} s ({BACKLOG / one:.0f} jobs/s), "
        f"two worker hosts {two:.2f} s ({BACKLOG / two:.0f} jobs/s; last split {shares}); "
        f"speed-up {one / two:.2f}x (best of {DRAIN_ROUNDS}; all runs {timings})"
    )
    print(f"jobs done by worker host, from their own /metrics: {assert_metrics_add_up(deployment)}")


def test_file_store_with_workers_on_another_host_fails_clearly(deployment, tmp_path_factory):
    """The web saves to its own disk; worker-b's host has its own disk at that path (a tmpfs there)."""
    web_disk = tmp_path_factory.mktemp("web-local-disk")
    images = web_disk / "images"
    database_url = create_database("imgsvc_filestore", deployment.services.mariadb.url)
    env = deployment_env(
        web_disk,
        database_url,
        f"inference-file-{uuid.uuid4().hex[:8]}",
        CELERY_BROKER_URL=deployment.env["CELERY_BROKER_URL"],
        IMAGE_STORE_URL=images.as_uri(),
        **S3_CREDENTIALS,
    )
    worker_b = deployment.workers["worker-b"]
    settings = worker_env(env, worker_b.host, Path(worker_b.env["INSTANCE_PATH"]), WORKER_METRICS_PORT="")
    worker = start_worker(
        settings,
        deployment.log_dir,
        "worker-b-file",
        concurrency=1,
        wrap=lambda args: worker_b.host.command(args, private_dirs=(str(web_disk),)),
    )
    web = start_web(deployment.web, env, tmp_path_factory.mktemp("web-file"), port=5001)
    entry_url = web.url
    try:
        assert f"image store {images.as_uri()} is not a directory on this host" in worker.output()
        job = post(entry_url, BODIES[0])
        result = wait_for_result(entry_url, job)
        [(image_url,)] = query(database_url, "SELECT image_url FROM predictions WHERE uuid=:u", u=job)
        assert Path(image_url.removeprefix("file://")).is_file(), "the image is on the web host's disk"
        assert result["status"] == "failed"
        assert "not on this worker's disk" in result["error"] and "shared" in result["error"]
        assert "s3://" in result["error"]
    finally:
        web.stop()
        worker.stop()
