"""Per-destination slots: at most N deliveries in flight to one receiver from this worker process.

A receiver that hangs can then hold only its own N threads; a delivery that finds its
destination's slots taken is put back in the broker for later (``tasks.webhook_delivery``) rather
than waiting in a thread every other receiver needs.
"""

import threading
from collections import Counter


class DestinationSlots:
    def __init__(self):
        self._lock = threading.Lock()
        self._in_flight = Counter()

    def take(self, destination, limit: int) -> bool:
        """Take one of ``destination``'s ``limit`` slots; False when all are taken."""
        with self._lock:
            if self._in_flight[destination] >= limit:
                return False
            self._in_flight[destination] += 1
            return True

    def give_back(self, destination) -> None:
        with self._lock:
            self._in_flight[destination] -= 1
            if not self._in_flight[destination]:
                del self._in_flight[destination]
