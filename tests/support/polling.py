"""The one poll-until helper: tests wait for a condition with a deadline, never sleep and hope."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(condition: Callable[[], T], what: str | Callable[[], str], timeout: float, interval: float = 0.1) -> T:
    """``condition()``'s first truthy value, asked every ``interval`` seconds; TimeoutError after
    ``timeout`` seconds, saying ``what`` was awaited (a callable ``what`` is asked only then)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what() if callable(what) else what}")
        time.sleep(interval)
