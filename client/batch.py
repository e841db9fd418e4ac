"""Posting every image of a folder to a running service and waiting for each prediction."""
import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import requests
from tqdm import tqdm

from client.report import Outcome

POLL_INTERVAL = 0.1  # seconds between GETs while pending; the server's Retry-After is an upper bound
_sessions = threading.local()


def _session() -> requests.Session:
    """One keep-alive session per thread (a Session is not meant to be shared across threads)."""
    if not hasattr(_sessions, "session"):
        _sessions.session = requests.Session()
    return _sessions.session


def _body(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return response.text


def classify_one(base_url: str, path: Path, timeout: float, poll_interval: float = POLL_INTERVAL) -> Outcome:
    """POST the image, then GET its prediction until it is no longer pending (or ``timeout`` passes),
    waiting the server's Retry-After or ``poll_interval`` between GETs, whichever is shorter."""
    outcome = Outcome(name=path.name)
    started = time.perf_counter()
    session = _session()
    try:
        payload = {"name": path.name, "data": base64.b64encode(path.read_bytes()).decode("ascii")}
        response = session.post(f"{base_url}/inference/image", json=payload, timeout=30)
        outcome.post_status, outcome.post_body = response.status_code, _body(response)
        if response.status_code != 202:
            return outcome
        location = f"{base_url}/predictions/{outcome.post_body['uuid']}"
        deadline = started + timeout
        while True:
            response = session.get(location, timeout=30)
            outcome.gets += 1
            outcome.get_status, outcome.get_body = response.status_code, _body(response)
            if response.status_code != 202:
                return outcome
            if time.perf_counter() > deadline:
                outcome.error = f"still pending after {timeout:.0f} s"
                return outcome
            retry_after = float(response.headers.get("Retry-After") or poll_interval)
            time.sleep(min(retry_after, poll_interval))
    except (requests.RequestException, OSError) as error:
        outcome.error = f"{type(error).__name__}: {error}"
        return outcome
    finally:
        outcome.seconds = time.perf_counter() - started


def run_batch(base_url: str, images: list[Path], concurrency: int, timeout: float, on_outcome) -> list[Outcome]:
    """Classify ``images`` with ``concurrency`` requests in flight; ``on_outcome`` sees each as it ends.

    Returns the outcomes in the order of ``images``.
    """
    outcomes: dict[Path, Outcome] = {}
    with ThreadPoolExecutor(max_workers=concurrency) as pool, \
            tqdm(total=len(images), unit="img", desc="classifying") as progress:
        futures = {pool.submit(classify_one, base_url, path, timeout): path for path in images}
        for future in as_completed(futures):
            outcome = outcomes[futures[future]] = future.result()
            on_outcome(outcome, progress)
            progress.update()
    return [outcomes[path] for path in images]
