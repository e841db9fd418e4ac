"""Posting every image of a folder to a running service and waiting for each prediction."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import requests
from tqdm import tqdm

from client.report import Outcome

# Each GET asks the service to hold the answer until the job ends (?wait=, served by the waiter without a
# web thread), so a job costs one or two GETs instead of a poll every few tenths of a second. A service
# that answers a pending job at once (no waiter) is asked again after its Retry-After.
WAIT_SECONDS = 25
# A POST that got no answer, or a 503, is sent again with the same Idempotency-Key after these pauses:
# the service makes one job of it however many of the tries arrived.
POST_RETRY_PAUSES = (0.5, 2)
_sessions = threading.local()


def _session(api_key: str = "") -> requests.Session:
    """One keep-alive session per thread (a Session is not meant to be shared across threads),
    sending ``api_key`` as ``Authorization: Bearer`` when one is given."""
    if not hasattr(_sessions, "session"):
        _sessions.session = requests.Session()
    headers = _sessions.session.headers
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    else:
        headers.pop("Authorization", None)
    return _sessions.session


def _body(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return response.text


def classify_one(base_url: str, path: Path, timeout: float, api_key: str = "") -> Outcome:
    """POST the image, then wait for its prediction with long-poll GETs (or until ``timeout`` passes)."""
    outcome = Outcome(name=path.name)
    started = time.perf_counter()
    session = _session(api_key)
    try:
        response = post_image(session, base_url, path)
        outcome.post_status, outcome.post_body = response.status_code, _body(response)
        if response.status_code != 202:
            return outcome
        location = f"{base_url}/predictions/{outcome.post_body['uuid']}"
        deadline = started + timeout
        while True:
            wait = max(1, min(WAIT_SECONDS, round(deadline - time.perf_counter())))
            asked = time.perf_counter()
            response = session.get(location, params={"wait": wait}, timeout=wait + 15)
            outcome.get_status, outcome.get_body = response.status_code, _body(response)
            outcome.gets += 1
            if response.status_code != 202:
                return outcome
            if time.perf_counter() > deadline:
                outcome.error = f"still pending after {timeout:.0f} s"
                return outcome
            if time.perf_counter() - asked < wait / 2:  # answered at once: honour the service's pace
                time.sleep(float(response.headers.get("Retry-After") or 1))
    except (requests.RequestException, OSError) as error:
        outcome.error = f"{type(error).__name__}: {error}"
        return outcome
    finally:
        outcome.seconds = time.perf_counter() - started


def post_image(session: requests.Session, base_url: str, path: Path) -> requests.Response:
    """POST the file as multipart (no base64), retrying a lost or 503 answer under one Idempotency-Key."""
    image = path.read_bytes()
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    def send() -> requests.Response:
        return session.post(
            f"{base_url}/inference/image",
            files={"image": (path.name, image)},
            data={"name": path.name},
            headers=headers,
            timeout=30,
        )

    for pause in POST_RETRY_PAUSES:
        try:
            response = send()
            if response.status_code != 503:
                return response
        except requests.ConnectionError:
            pass
        time.sleep(pause)
    return send()


def run_batch(
    base_url: str, images: list[Path], concurrency: int, timeout: float, on_outcome, api_key: str = ""
) -> list[Outcome]:
    """Classify ``images`` with ``concurrency`` requests in flight; ``on_outcome`` sees each as it ends.

    Returns the outcomes in the order of ``images``.
    """
    outcomes: dict[Path, Outcome] = {}
    with (
        ThreadPoolExecutor(max_workers=concurrency) as pool,
        tqdm(total=len(images), unit="img", desc="classifying") as progress,
    ):
        futures = {pool.submit(classify_one, base_url, path, timeout, api_key): path for path in images}
        for future in as_completed(futures):
            outcome = outcomes[futures[future]] = future.result()
            on_outcome(outcome, progress)
            progress.update()
    return [outcomes[path] for path in images]
