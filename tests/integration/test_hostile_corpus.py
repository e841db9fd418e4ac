"""Every file of the hostile corpus through the real proxy, web and worker, on MariaDB and RabbitMQ.

For each file: the HTTP answer, the job's final status and reason, and that a good photo
posted right after it is classified. Around the whole corpus: the peak memory of every web
and worker process (VmHWM from /proc) grows within the decode budget.
"""

import base64
import io
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from deploy.harness import deployment_env, running_service
from tests.conftest import SAMPLES, SHARED_IMAGES
from tests.support.api import wait_for_result
from tests.support.hostile_images import CORPUS

GOOD = SAMPLES / "elephant.jpg"
ELEPHANTS = {"tusker", "African_elephant", "Indian_elephant"}
# Growth of any one process's peak memory over the corpus. The web never decodes; the worker
# decodes only files the structural check admitted, whose worst case is ~100 MB.
WEB_BUDGET_MB = 40
WORKER_BUDGET_MB = 150


def descendants(pid: int) -> list[int]:
    pids, found = [pid], []
    while pids:
        current = pids.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            pids.extend(int(child) for child in (task / "children").read_text().split())
    return found


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise LookupError(pid)


def peaks(process) -> dict[int, float]:
    return {pid: peak_rss_mb(pid) for pid in descendants(process.popen.pid)}


def post(base_url: str, name: str, data: bytes) -> requests.Response:
    body = {"name": name, "data": base64.b64encode(data).decode()}
    return requests.post(f"{base_url}/inference/image", json=body, timeout=30)


@pytest.fixture(scope="module")
def service(tmp_path_factory, mysql_url, new_queue):
    instance = tmp_path_factory.mktemp("hostile")
    env = deployment_env(instance, mysql_url, new_queue())
    with running_service(env, instance) as (url, web, worker):
        # Warm up: every process has loaded what it needs before peaks are compared.
        for _ in range(4):
            assert wait_for_result(url, post(url, GOOD.name, GOOD.read_bytes()).json()["uuid"])["status"] == "done"
        yield url, web, worker


def test_each_hostile_file_gets_its_answer_and_fails_alone(service):
    base_url, web, worker = service
    before = {"web": peaks(web), "worker": peaks(worker)}
    outcomes, neighbours = {}, []
    for entry in CORPUS:
        response = post(base_url, entry.name, entry.make())
        if entry.expected == "refused":
            assert 400 <= response.status_code < 500, (entry.name, response.status_code, response.text)
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.json()["detail"], entry.name
            if entry.status:
                assert response.status_code == entry.status, entry.name
        else:
            assert response.status_code == 202, (entry.name, response.text)
            outcomes[entry.name] = response.json()["uuid"]
        neighbour = post(base_url, GOOD.name, GOOD.read_bytes())
        assert neighbour.status_code == 202
        neighbours.append(neighbour.json()["uuid"])

    started = time.monotonic()
    for entry in CORPUS:
        if entry.expected == "refused":
            continue
        result = wait_for_result(base_url, outcomes[entry.name])
        assert result["status"] == entry.expected, (entry.name, result)
        if entry.expected == "failed":
            assert result["error"] and "/" not in result["error"].split(":")[0], (entry.name, result)
    assert {wait_for_result(base_url, job)["prediction"] for job in neighbours} <= ELEPHANTS
    assert time.monotonic() - started < 120

    after = {"web": peaks(web), "worker": peaks(worker)}
    for role, budget in (("web", WEB_BUDGET_MB), ("worker", WORKER_BUDGET_MB)):
        growth = {pid: after[role][pid] - before[role].get(pid, 0) for pid in after[role] if pid in before[role]}
        assert growth, f"no {role} process outlived the corpus"
        assert max(growth.values()) < budget, (role, growth)


def test_a_name_with_a_lone_surrogate_is_refused_and_nothing_is_stored(service, tmp_path):
    base_url, _, _ = service
    body = '{"name": "\\ud800", "data": "%s"}' % base64.b64encode(GOOD.read_bytes()).decode()
    response = requests.post(
        f"{base_url}/inference/image", data=body, timeout=30, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert "name" in response.json()["detail"] or "JSON" in response.json()["detail"]


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_a_16_bit_grey_zebra_is_served_as_a_zebra(service, fmt):
    """The reported wrong answer: 16-bit grey PNG and TIFF came back spider_web 0.27 (clipped to white)."""
    base_url, _, _ = service
    with Image.open(SHARED_IMAGES / "n02391049_zebra.JPEG") as photo:
        grey = np.asarray(photo.convert("L")).astype(np.uint16) * 257
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, fmt)
    response = post(base_url, f"zebra.{fmt.lower()}", buffer.getvalue())
    assert response.status_code == 202, response.text
    assert wait_for_result(base_url, response.json()["uuid"])["prediction"] == "zebra"
