"""Submitting batches over HTTP and reading their results back."""

import csv
import io
import itertools
import json
import subprocess
import sys
import tarfile

import requests

from config.settings import PROJECT_ROOT
from tests.support.photos import shared_images
from tests.support.polling import until

DEADLINE = 240  # seconds for a batch of a few hundred images on 2 vCPUs


def images(count: int) -> list[tuple[str, bytes]]:
    """``count`` (name, bytes) pairs cycling the shared photos, each name unique."""
    paths = itertools.cycle(shared_images())
    return [(f"{index:04d}-{path.name}", path.read_bytes()) for index, path in zip(range(count), paths)]


def post_multipart(base_url, pairs, fields=None, **kwargs) -> requests.Response:
    files = [("image", (name, data, "application/octet-stream")) for name, data in pairs]
    return requests.post(f"{base_url}/batches", files=files, data=fields or {}, timeout=120, **kwargs)


def tar_bytes(pairs) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in pairs:
            member = tarfile.TarInfo(f"photos/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def wait_until_done(base_url, batch_id, headers=None) -> dict:
    """Long polls (?wait through the waiter) until the batch has ended."""

    def ended():
        response = requests.get(f"{base_url}/batches/{batch_id}?wait=20", headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json() if response.json()["completed_at"] is not None else None

    return until(ended, f"batch {batch_id} ended", DEADLINE, interval=0)


def results(base_url, batch_id, fmt="jsonl", headers=None) -> list[dict]:
    response = requests.get(f"{base_url}/batches/{batch_id}/results?format={fmt}", headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    if fmt == "csv":
        assert response.headers["Content-Type"].startswith("text/csv")
        return list(csv.DictReader(io.StringIO(response.text)))
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def run_client(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs ``python -m client batch`` with ``args``, as a user would, capturing what it prints."""
    return subprocess.run(
        [sys.executable, "-m", "client", "batch", *map(str, args)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
