"""Adaptive batching that loses nothing and loops on nothing: celery-batches made safe.

The worker's consumer buffers task messages and hands them to a pool process
as one batch when ``batch_max_size`` have arrived or ``batch_max_wait``
seconds have passed, and only while a pool process is free: a lone request is
classified almost at once, while under load requests gather until a process
frees up and leave as one batch.

celery-batches acks a batch even when its run raised or its pool process
died. Here a batch is acked only when ``run`` returned True (its results are
committed); otherwise every message goes back to the queue. Two rules keep
that from looping:

- A message that comes back (its pool process died, or the batch was not
  committed) is run alone next time, so an image that crashes its process
  takes no neighbours with it.
- The broker counts deliveries (a quorum queue's ``x-delivery-count``); the
  task ends a job as failed once it reaches ``MAX_DELIVERIES``, and the
  queue's ``x-delivery-limit`` dead-letters it if even that cannot happen.

Each run has a hard time limit, so a pool process stuck on one image is
killed and that image is counted like a crash.
"""

import logging

from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task

from jobs.app import AppContextTask

logger = logging.getLogger(__name__)

# Seconds a run may take: a fixed allowance (database, store) plus a budget per image.
RUN_BASE_SECONDS = 30
RUN_SECONDS_PER_IMAGE = 2


def deliveries(request) -> int:
    """How many times the broker delivered this message before (0 on the first delivery)."""
    headers = getattr(request, "request_dict", None) or {}
    count = headers.get("x-delivery-count")
    if count is None and (getattr(request, "delivery_info", None) or {}).get("redelivered"):
        return 1  # a broker that does not count still says the message came back
    return int(count or 0)


class NoLossBatches(AppContextTask, Batches):
    """A batch task whose messages are acked only after ``run(requests)`` returned True."""

    acks_late = True

    def Strategy(self, task, app, consumer):
        self.flush_every = app.conf.batch_max_size
        self.flush_interval = app.conf.batch_max_wait
        self._held = []  # requests waiting for a free pool process
        self._running = 0  # runs handed to the pool that have not returned yet
        return super().Strategy(task, app, consumer)

    def flush(self, requests):
        self._held.extend(requests)
        self._dispatch()

    def _dispatch(self):
        """Hand held requests to the pool while a process is free. While every process is busy they
        pile up here and leave together, so batches grow with the load (and the fixed cost of a run,
        its database reads and writes and its acks, is shared) while a lone request still goes at once.
        A returning message runs alone: it may be the one that killed the last run."""
        while self._held and self._running < max(self._pool.num_processes, 1):
            returning = next((request for request in self._held if deliveries(request) > 0), None)
            if returning is not None:
                self._held.remove(returning)
                self._run([returning])
            else:
                batch, self._held = self._held[: self.flush_every], self._held[self.flush_every :]
                self._run(batch)

    def _run(self, requests):
        batch = ([SimpleRequest.from_request(r) for r in requests],)
        self._running += 1

        def on_return(committed):
            if committed is True:
                for request in requests:
                    request.acknowledge()
                finished()
            else:
                requeue(f"run returned {committed!r}")

        def requeue(reason):
            logger.warning("batch of %d not committed (%s); requeued", len(requests), reason)
            for request in requests:
                request.reject(requeue=True)
            finished()

        def finished():
            self._running -= 1
            self._dispatch()

        # apply_batches_task returns None when run raised; error_callback sees a killed process.
        return self._pool.apply_async(
            apply_batches_task,
            (self, batch, 0, None),
            callback=on_return,
            error_callback=lambda error: requeue(_describe_pool_error(error)),
            timeout=RUN_BASE_SECONDS + RUN_SECONDS_PER_IMAGE * len(requests),
        )


def _describe_pool_error(error) -> str:
    """The pool wraps a lost process or a time limit twice (ExceptionInfo, ExceptionWithTraceback)."""
    inner = getattr(error, "exception", error)
    inner = getattr(inner, "exc", inner)
    return f"{type(inner).__name__}: {inner}"
