"""Classifying a folder through the batch API: a tar of up to ``batch_size`` images per ``POST /batches``.

Several batches are in flight at once. Each is watched with ``GET /batches/<id>`` (its counts feed
the progress bar) until it completes, then its results file is appended to ``--out``. Images the
output file already holds are skipped, so running the same command again finishes an interrupted
run. Each tar is written to a temporary file and streamed from there: the client's memory does
not grow with the batch.
"""

import csv
import json
import os
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from tqdm import tqdm

POLL_SECONDS = 1.0
RETRY_PAUSES = (1, 2, 4, 8)  # after a 503 or a lost connection, before sending the batch again
RATE_LIMITED = 429  # the service's RATE_LIMIT is spent: wait as its Retry-After says, then ask again
RESULT_FIELDS = ("uuid", "name", "status", "prediction", "confidence", "top5", "error")


class BatchRefused(RuntimeError):
    """The service refused a batch (a 4xx other than 413): the images stay unclassified."""


def read_results(path: Path | None) -> list[dict]:
    """The records an earlier run wrote to ``path`` (JSON Lines, or CSV by the file's suffix)."""
    if path is None or not path.exists():
        return []
    with path.open(newline="") as file:
        if path.suffix == ".csv":
            records = list(csv.DictReader(file))
            for record in records:
                record["top5"] = json.loads(record["top5"]) if record["top5"] else None
            return records
        return [json.loads(line) for line in file if line.strip()]


class ResultsFile:
    """Appends records to the output file, from any thread, header first for a new CSV."""

    def __init__(self, path: Path | None):
        self.path, self.lock = path, threading.Lock()

    def append(self, records: list[dict]) -> None:
        if self.path is None or not records:
            return
        with self.lock:
            new = not self.path.exists() or self.path.stat().st_size == 0
            with self.path.open("a", newline="") as file:
                if self.path.suffix == ".csv":
                    writer = csv.DictWriter(file, RESULT_FIELDS, lineterminator="\n")
                    if new:
                        writer.writeheader()
                    for record in records:
                        writer.writerow({**record, "top5": json.dumps(record["top5"]) if record["top5"] else ""})
                else:
                    file.writelines(json.dumps(record) + "\n" for record in records)


def write_tar(paths: list[Path], target) -> None:
    """A tar of the images, each a regular member under its file name (the name its results carry),
    whatever the file is on disk (a symbolic or hard link is sent as the file it points to)."""
    with tarfile.open(fileobj=target, mode="w") as archive:
        for path in paths:
            with path.open("rb") as image:
                member = tarfile.TarInfo(path.name)
                member.size = os.fstat(image.fileno()).st_size
                archive.addfile(member, image)
    target.seek(0)


def chunks(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class BatchRunner:
    def __init__(self, base_url: str, headers: dict, out: ResultsFile, progress: tqdm, timeout: float):
        self.base_url, self.headers, self.out, self.progress, self.timeout = base_url, headers, out, progress, timeout
        self.lock = threading.Lock()

    def run(self, paths: list[Path]) -> list[dict]:
        """Classify ``paths`` as one batch (halved while the service says it is too large); their records."""
        try:
            batch_id = self.submit(paths)
        except _TooLarge:
            if len(paths) == 1:
                raise BatchRefused(f"{paths[0].name} alone is larger than the service takes") from None
            half = len(paths) // 2
            return self.run(paths[:half]) + self.run(paths[half:])
        self.watch(batch_id)
        records = self.results(batch_id)
        self.out.append(records)
        return records

    def request(self, method: str, path: str, **options) -> requests.Response:
        """One request, sent again after the pause a 429's Retry-After asks for, until ``timeout``."""
        deadline = time.monotonic() + self.timeout
        headers = {**self.headers, **options.pop("headers", {})}
        while True:
            body = options.get("data")
            if body is not None:
                body.seek(0)
            response = requests.request(method, f"{self.base_url}{path}", headers=headers, **options)
            if response.status_code != RATE_LIMITED or time.monotonic() > deadline:
                return response
            response.close()
            pause = float(response.headers.get("Retry-After") or POLL_SECONDS)
            self.progress.write(f"rate limited (429): {method} {path} again in {pause:g} s", file=sys.stderr)
            time.sleep(pause)

    def submit(self, paths: list[Path]) -> str:
        with tempfile.TemporaryFile() as body:
            write_tar(paths, body)
            for pause in (*RETRY_PAUSES, None):
                try:
                    response = self.request(
                        "POST", "/batches", data=body, headers={"Content-Type": "application/x-tar"}, timeout=300
                    )
                except requests.ConnectionError:
                    response = None
                if response is not None and response.status_code == 202:
                    return response.json()["id"]
                if response is not None and response.status_code == 413:
                    raise _TooLarge()
                if response is not None and response.status_code != 503:
                    raise BatchRefused(f"POST /batches answered {response.status_code}: {response.text[:300]}")
                if pause is None:
                    raise BatchRefused("the service stayed unavailable")
                time.sleep(pause)
        raise AssertionError("unreachable")

    def watch(self, batch_id: str) -> None:
        """Poll the batch's counts (they move the progress bar) until it has ended."""
        deadline, ended_before = time.monotonic() + self.timeout, 0
        while True:
            response = self.request("GET", f"/batches/{batch_id}", timeout=30)
            response.raise_for_status()
            batch = response.json()
            counts = batch["request_counts"]
            ended = counts["total"] - counts["pending"]
            with self.lock:
                self.progress.update(ended - ended_before)
            ended_before = ended
            if batch["completed_at"] is not None:
                return
            if time.monotonic() > deadline:
                raise BatchRefused(f"batch {batch_id} still running after {self.timeout:.0f} s")
            time.sleep(POLL_SECONDS)

    def results(self, batch_id: str) -> list[dict]:
        with self.request("GET", f"/batches/{batch_id}/results", stream=True, timeout=60) as response:
            response.raise_for_status()
            return [json.loads(line) for line in response.iter_lines() if line]


class _TooLarge(Exception):
    pass


def run_batches(
    base_url: str,
    images: list[Path],
    batch_size: int,
    in_flight: int,
    out_path: Path | None,
    api_key: str | None,
    timeout: float,
) -> tuple[list[dict], int, list[str]]:
    """Classify the images ``out_path`` does not hold yet. Returns (every record, the output file's
    earlier ones included; how many images were skipped as done before; errors, in words)."""
    earlier = read_results(out_path)
    known = {record["name"] for record in earlier}
    todo = [path for path in images if path.name not in known]
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    records, errors = list(earlier), []
    with (
        tqdm(total=len(todo), unit="img", desc="classifying") as progress,
        ThreadPoolExecutor(max_workers=in_flight) as pool,
    ):
        runner = BatchRunner(base_url, headers, ResultsFile(out_path), progress, timeout)
        futures = [pool.submit(runner.run, chunk) for chunk in chunks(todo, batch_size)]
        for future in futures:
            try:
                records.extend(future.result())
            except (BatchRefused, requests.RequestException) as error:
                errors.append(str(error))
    return records, len(images) - len(todo), errors
