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

Who goes first (``next_batch``): a returning message, alone; then single uploads (the
interactive queue); then bulk work, taken from the clients' lanes in turn, in batches sized so a
run lasts about ``TARGET_RUN_SECONDS`` (``Pace``).

A bulk message carries several jobs (``jobs.broker.BULK_CHUNK``). It is split into one ``Part`` per
job as it arrives, so every rule above applies job by job; the message is acked once each of its
parts was committed, and requeued at the first part whose run was not. Parts of a message that
came back run alone, one by one: a job that kills its process takes no other job with it, and the
others are recorded on the way (a redelivered job already ended is skipped by the task).

Each run has a hard time limit, so a pool process stuck on one image is
killed and that image is counted like a crash.
"""

import logging
import threading
import time

from celery_batches import Batches, SimpleRequest, consume_queue
from celery_batches.trace import apply_batches_task

from jobs.app import AppContextTask

logger = logging.getLogger(__name__)

# Seconds a run may take: a fixed allowance (database, store) plus a budget per image.
RUN_BASE_SECONDS = 30
RUN_SECONDS_PER_IMAGE = 2
# How long a run of bulk work should last: what a single upload may wait for a busy process.
TARGET_RUN_SECONDS = 0.4


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
        self._forget_lost_connection()
        self._interactive = app.conf.task_default_queue  # single uploads; the rest are bulk lanes
        self._paces: dict[str, Pace] = {}  # bulk lane -> the pace of its current burst
        self._last_lane = None  # the bulk lane served last, so the next batch starts after it
        # The consumer, the flush timer and the pool's result thread all add and take held requests.
        self._lock = threading.RLock()
        handle = super().Strategy(task, app, consumer)

        def on_message(*args, **kwargs):
            """A message that finds a pool process free leaves at once, without waiting for the flush
            timer: the worker's timer thread (on the embedded broker, which has no event loop) wakes
            only about once a second, which held a lone image for up to a second."""
            handle(*args, **kwargs)
            if not self._held and self._running < max(self._pool.num_processes, 1):
                self._do_flush()

        return on_message

    def _forget_lost_connection(self):
        """Celery builds the strategy again at each reconnection to the broker, after clearing its
        event loop's timers (``celery.worker.loops.asynloop``) and dropping from its pool the runs
        no process had taken yet (``AsynPool.flush``, which never calls their callbacks).

        - celery-batches' flush timer went with the cleared timers, but its handle (``_tref``) stays
          set, so the timer was never started again: after a failover, requests buffered while a run
          was on waited until ``batch_max_size`` more arrived (the stall in docs/scaling.md).
        - Requests still buffered came over the lost connection: they can be neither acked nor
          rejected, and the broker delivers them again, so they are dropped like the held ones.
        - Only the runs the pool still holds are running; counting from zero instead let a run from
          before the reconnection return to a count of -1, so two runs went to one process.
        """
        restart_flush_timer(self)
        stale = len(list(consume_queue(self._buffer))) + len(list(consume_queue(self._pending)))
        if stale:
            logger.warning("dropped %d requests received before the broker connection was lost", stale)
        # Runs handed to the pool that have not returned yet (each a token, and the pool's job).
        self._runs = {token: job for token, job in getattr(self, "_runs", {}).items() if _still_in_pool(job)}
        self._running = len(self._runs)

    def flush(self, requests):
        with self._lock:
            self._held.extend(part for request in requests for part in parts_of(request))
            self._dispatch()

    def _dispatch(self):
        """Hand held requests to the pool while a process is free. While every process is busy they
        pile up here and leave together, so batches grow with the load (and the fixed cost of a run,
        its database reads and writes and its acks, is shared) while a lone request still goes at once."""
        with self._lock:
            while self._held and self._running < max(self._pool.num_processes, 1):
                batch, self._last_lane = next_batch(
                    self._held, self._interactive, self.flush_every, self._bulk_size(), self._last_lane
                )
                taken = {id(request) for request in batch}
                self._held = [request for request in self._held if id(request) not in taken]
                self._run(batch)

    def _bulk_size(self) -> int:
        """The smallest size any bulk lane with work held asks for. A lane with nothing held forgets
        its pace, so each burst starts with one image and the next client's costly images never
        ride in a batch sized for someone else's photos."""
        lanes = {queue_of(request) for request in self._held} - {self._interactive}
        self._paces = {lane: pace for lane, pace in self._paces.items() if lane in lanes}
        return min((self._paces.get(lane, Pace(self.flush_every)).size() for lane in lanes), default=self.flush_every)

    def _run(self, requests):
        batch = ([as_simple_request(r) for r in requests],)
        self._running += 1
        token = object()
        self._runs[token] = None  # the pool's job, once handed over
        started = time.monotonic()

        def on_return(committed):
            lanes = {queue_of(request) for request in requests} - {self._interactive}
            with self._lock:
                for lane in lanes:
                    self._paces.setdefault(lane, Pace(self.flush_every)).observe(
                        len(requests), time.monotonic() - started
                    )
            if committed is True:
                try:
                    with self._lock:  # parts of one message may return from two pool processes at once
                        for request in requests:
                            request.acknowledge()
                finally:  # a failed ack must not leave the run counted, or the worker takes no more
                    finished()
            else:
                requeue(f"run returned {committed!r}")

        def requeue(reason):
            logger.warning("batch of %d not committed (%s); requeued", len(requests), reason)
            try:
                with self._lock:
                    for request in requests:
                        request.reject(requeue=True)
            finally:
                finished()

        def finished():
            with self._lock:
                if token in self._runs:  # uncounted at a reconnection if the pool dropped it then
                    del self._runs[token]
                    self._running -= 1
            self._do_flush()  # what arrived meanwhile, without waiting for the flush timer
            self._dispatch()

        # apply_batches_task returns None when run raised; error_callback sees a killed process.
        # Never waiting for a free slot (``waitforslot``): this runs on the pool's own result and
        # time-limit threads too, and without an event loop (the embedded broker) the pool guards
        # its slots with a semaphore that only those threads release. A periodic task (the
        # sweeper) taking a slot the count above did not see blocked them there for good.
        job = self._pool.on_apply(
            apply_batches_task,
            (self, batch, 0, None),
            {},
            callback=on_return,
            error_callback=lambda error: requeue(_describe_pool_error(error)),
            timeout=RUN_BASE_SECONDS + RUN_SECONDS_PER_IMAGE * len(requests),
            waitforslot=False,
            callbacks_propagate=self._pool.callbacks_propagate,
        )
        if token in self._runs:
            self._runs[token] = job
        return job


def restart_flush_timer(task: Batches) -> None:
    """Let celery-batches start its flush timer again at the next message: it starts one only while
    its handle (``_tref``) is None, and Celery clears its event loop's timers when the broker
    connection is lost without telling it (tests/integration/test_batches_reconnect.py)."""
    if task._tref is not None:
        task._tref.cancel()
        task._tref = None


def _still_in_pool(run) -> bool:
    """Whether the pool still holds ``run`` (billiard's ApplyResult): it leaves the pool's cache
    when its callback is called, or when the pool drops it at a reconnection."""
    cache = getattr(run, "_cache", None)
    return cache is not None and cache.get(run._job) is run


class Message:
    """A bulk message's fate, shared by its parts: acked once every part was committed, or requeued
    (once) at the first part that was not. Parts still held after that run anyway: what they record
    counts, and the redelivered copy skips them."""

    def __init__(self, request, parts: int):
        self.request, self.left, self.settled = request, parts, False

    def part_committed(self) -> None:
        self.left -= 1
        if self.left == 0 and not self.settled:
            self.settled = True
            self.request.acknowledge()

    def part_not_committed(self) -> None:
        if not self.settled:
            self.settled = True
            self.request.reject(requeue=True)


class Part:
    """One job of a bulk message, held, paced and run as if it were a message of its own."""

    def __init__(self, message: Message, job: list):
        self.message, self.args = message, (job[0], job[1])
        request = message.request
        self.delivery_info, self.request_dict = request.delivery_info, request.request_dict

    def acknowledge(self) -> None:
        self.message.part_committed()

    def reject(self, requeue: bool = True) -> None:
        self.message.part_not_committed()


def parts_of(request) -> list:
    """A bulk message's jobs as parts (``args``: a list of [uuid, URL]); a single upload as it is."""
    if not request.args or not isinstance(request.args[0], list):
        return [request]
    jobs = request.args[0]
    message = Message(request, len(jobs))
    if not jobs:
        message.request.acknowledge()
    return [Part(message, job) for job in jobs]


def as_simple_request(request) -> SimpleRequest:
    """What the task receives for a held request or part: ``args`` (uuid, URL) and the message's headers."""
    if not isinstance(request, Part):
        return SimpleRequest.from_request(request)
    whole = request.message.request
    return SimpleRequest(
        request.args[0],
        whole.name,
        request.args,
        {},
        request.delivery_info,
        whole.hostname,
        whole.ignore_result,
        whole.reply_to,
        whole.correlation_id,
        request.request_dict,
    )


def queue_of(request) -> str:
    """The queue a request came from: jobs are published with the queue's name as routing key."""
    return (getattr(request, "delivery_info", None) or {}).get("routing_key") or ""


def next_batch(held: list, interactive: str, largest: int, bulk_size: int, last_lane: str | None):
    """The next batch from ``held`` (in arrival order), and the bulk lane it served last.

    - A message that came back runs alone: it may be the one that killed the last run.
    - Interactive requests (single uploads) go before any bulk work, in a batch of their own, so
      a single image never waits behind a batch's worth of someone else's images.
    - Bulk requests are taken from the lanes in turn, starting after ``last_lane``, up to
      ``bulk_size``: each client with work held gets an equal share of every batch, and with
      batches of one (costly images) the lanes still alternate.
    """
    returning = next((request for request in held if deliveries(request) > 0), None)
    if returning is not None:
        return [returning], last_lane
    interactive_requests = [request for request in held if queue_of(request) == interactive]
    if interactive_requests:
        return interactive_requests[:largest], last_lane
    lanes: dict[str, list] = {}
    for request in held:
        lanes.setdefault(queue_of(request), []).append(request)
    names = sorted(lanes)
    after = [name for name in names if last_lane is not None and name > last_lane]
    order = after + [name for name in names if name not in after]
    batch: list = []
    served, longest = last_lane, max(len(requests) for requests in lanes.values())
    for turn in range(longest):
        if len(batch) == bulk_size:
            break
        for name in order:
            if len(batch) < bulk_size and turn < len(lanes[name]):
                batch.append(lanes[name][turn])
                served = name
    return batch, served


class Pace:
    """The size of a bulk batch, so that a run lasts about ``TARGET_RUN_SECONDS``.

    A run cannot be interrupted, so a single upload may wait for one run on every process: with a
    flood of the costliest admitted images (0.4 s or more each to decode), a batch of 32 would hold
    a process for over 10 s. Sizing bulk batches by their measured seconds per image (a moving
    average over runs, starting from one image) bounds that wait whatever the images cost, and
    gives ordinary photos their full batches from the second run on.
    """

    def __init__(self, largest: int):
        self.largest = largest
        self.seconds_per_image = 0.0

    def size(self) -> int:
        if self.seconds_per_image <= 0:
            return 1  # nothing measured yet: one image, whose run tells what the next ones cost
        return max(1, min(self.largest, int(TARGET_RUN_SECONDS / self.seconds_per_image)))

    def observe(self, images: int, seconds: float) -> None:
        latest = seconds / max(images, 1)
        self.seconds_per_image = latest if self.seconds_per_image <= 0 else (self.seconds_per_image + latest) / 2


def _describe_pool_error(error) -> str:
    """The pool wraps a lost process or a time limit twice (ExceptionInfo, ExceptionWithTraceback)."""
    inner = getattr(error, "exception", error)
    inner = getattr(inner, "exc", inner)
    return f"{type(inner).__name__}: {inner}"
