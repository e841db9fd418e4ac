"""Everything a worker process keeps between tasks, in one object you can print.

``worker_state`` is this process's one ``WorkerState``. ``tasks/lifecycle.py`` fills it at
start (the parent's fields before the pool forks, so every pool process inherits them) and
empties it at stop; the tasks read it. Tests set its fields directly.
"""

import threading
from dataclasses import dataclass, field
from typing import Any

from tasks.metrics import WorkerMetrics


@dataclass
class WorkerState:
    # Set in the parent at start, inherited by every pool process: what results record as
    # their provenance (models.runtime.provenance).
    model_provenance: dict[str, str | None] = field(default_factory=dict)
    # Built in each pool process (TensorFlow is not fork-safe), or at the first batch.
    classifier: Any = None
    # Made once the worker has its private multiprocess folder; None (the web, in-process
    # task runs in tests) counts nothing.
    metrics: WorkerMetrics | None = None
    # The worker's Celery hostname once it is ready: its heartbeat row in the database.
    hostname: str | None = None
    heartbeat_stop: threading.Event = field(default_factory=threading.Event)
    # Where the orphan-image sweep resumes in the image store (per process; a restart starts over).
    orphan_cursor: str = ""

    def model_identity(self) -> dict[str, str | None]:
        """What this worker serves, for its metrics' labels: the runtime and the weights' hash."""
        return {
            "runtime": self.model_provenance["model_runtime"],
            "weights_sha256": self.model_provenance["weights_sha256"],
        }


worker_state = WorkerState()
