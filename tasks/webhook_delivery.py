"""The webhook delivery task: POST a job's final result, signed, and record the attempt.

Runs in the webhook worker (``tasks.webhook_worker``), a thread pool on its own queue, so
receivers' slowness costs waiting threads, not the inference processes. One receiver cannot
take them all: an attempt lasts ``WEBHOOK_ATTEMPT_TIMEOUT`` at most (``tasks.webhook_http``),
and at most ``WEBHOOK_PER_DESTINATION`` attempts to one address and port are in flight; a
delivery finding them all taken goes back to the broker for BUSY_DELAY seconds, not counted as
an attempt. A failed attempt is published again after a growing delay (``jobs.webhook_schedule``) until
``WEBHOOK_RETRY_SECONDS`` after the first attempt, then given up; a URL that can never be
delivered (``CallbackRefused.permanent``: it was stored before the checks that refuse it at POST)
is given up at once. Delivery is at least once: an attempt is skipped when
the webhook was already accepted (2xx) or this attempt, or a later one, is already recorded (a
duplicate message); a crash between the receiver's answer and its record sends it twice, so
receivers should treat the uuid as the key.

``requeue_unsent_webhooks`` (beat, every minute) catches a first delivery that was never queued
(the broker refused the publish just as the job ended): an ended job (or completed batch) with a
callback and no attempt UNSENT_AFTER seconds after its end is queued again.

A batch's one webhook (``deliver_batch_webhook``, when it completes) follows the same rules.
"""

import json
import logging
import time
from datetime import timedelta
from http.client import HTTPException

from celery import shared_task
from sqlalchemy import func, select

from config.settings import Settings, current_settings
from jobs.batches import Batch, batch_json, request_counts
from jobs.broker import BUSY_DELAY, DELIVER_BATCH_TASK, DELIVER_TASK, REQUEUE_WEBHOOKS_TASK, retry_delay
from jobs.callbacks import CallbackRefused, vet_callback_url
from jobs.database import db
from jobs.records import PENDING, Prediction, utcnow
from jobs.signing import SIGNATURE_HEADER, sign
from jobs.webhook_schedule import WebhookDelivery, queue_first_deliveries, send_delivery
from tasks import webhook_http
from tasks.webhook_slots import DestinationSlots

logger = logging.getLogger(__name__)
USER_AGENT = "imgsvc-webhooks/1"
UNSENT_AFTER = 300  # seconds after a job's end with no attempt recorded before its delivery is queued again
REQUEUE_LIMIT = 500
SLOTS = DestinationSlots()  # this worker process's deliveries in flight, per destination
BUSY = object()  # _attempt's answer when the destination's slots are all taken


@shared_task(name=DELIVER_TASK, acks_late=True)
def deliver_webhook(prediction_uuid: str, attempt: int) -> str:
    """One attempt; returns what happened (for the worker's log). Whatever goes wrong in the
    attempt is recorded as its outcome: this task does not raise for a receiver or a URL."""
    settings = current_settings()
    row = db.session.get(Prediction, prediction_uuid)
    if row is None or not row.callback_url or row.status == PENDING:
        return "nothing to deliver"
    if _superseded(prediction_uuid, attempt):
        return "already delivered or attempted"
    body = json.dumps(row.to_json(), separators=(",", ":")).encode()
    callback_url = row.callback_url
    first_attempt_at = (
        db.session.scalar(select(func.min(WebhookDelivery.attempted_at)).where(WebhookDelivery.uuid == prediction_uuid))
        or utcnow()
    )
    db.session.rollback()  # no transaction is held while the receiver answers

    attempted_at, started = utcnow(), time.monotonic()
    outcome = _attempt_or_fault(callback_url, body, prediction_uuid, attempt, settings, prediction_uuid)
    if outcome is BUSY:
        send_delivery(prediction_uuid, attempt, BUSY_DELAY)
        return f"destination busy; again in {BUSY_DELAY}s"
    status_code, error, _ = outcome
    db.session.add(
        WebhookDelivery(
            uuid=prediction_uuid,
            attempt=attempt,
            attempted_at=attempted_at,
            status_code=status_code,
            error=error,
            duration=time.monotonic() - started,
        )
    )
    db.session.commit()
    return _next_step(DELIVER_TASK, prediction_uuid, attempt, outcome, first_attempt_at, settings)


@shared_task(name=DELIVER_BATCH_TASK, acks_late=True)
def deliver_batch_webhook(batch_id: str, attempt: int) -> str:
    """One attempt at a completed batch's webhook: its ``GET /batches/<id>`` body, signed and retried as
    a job's is. The attempts are counted on the batch's row (receivers should treat the id as the key)."""
    settings = current_settings()
    row = db.session.get(Batch, batch_id)
    if row is None or not row.callback_url or row.completed_at is None:
        return "nothing to deliver"
    if row.webhook_attempts >= attempt or (row.webhook_status_code or 0) // 100 == 2:
        return "already delivered or attempted"
    with db.engine.connect() as connection:
        body = json.dumps(batch_json(row, *request_counts(connection, batch_id)), separators=(",", ":")).encode()
    callback_url, first_attempt_at = row.callback_url, row.webhook_first_attempt_at or utcnow()
    db.session.rollback()  # no transaction is held while the receiver answers

    outcome = _attempt_or_fault(callback_url, body, batch_id, attempt, settings, f"batch {batch_id}")
    if outcome is BUSY:
        send_delivery(batch_id, attempt, BUSY_DELAY, task=DELIVER_BATCH_TASK)
        return f"destination busy; again in {BUSY_DELAY}s"
    row = db.session.get(Batch, batch_id)
    if row is None:  # removed by retention meanwhile
        return "batch gone"
    row.webhook_attempts, row.webhook_status_code, row.webhook_error = attempt, outcome[0], outcome[1]
    row.webhook_first_attempt_at = first_attempt_at
    db.session.commit()
    return _next_step(DELIVER_BATCH_TASK, batch_id, attempt, outcome, first_attempt_at, settings)


def _attempt_or_fault(callback_url: str, body: bytes, key: str, attempt: int, settings: Settings, what: str):
    """``_attempt``, where a fault of this code (not the receiver's) is still only this attempt's outcome."""
    try:
        return _attempt(callback_url, body, key, attempt, settings)
    except Exception as fault:
        logger.exception("webhook of %s: unexpected error in attempt %d", what, attempt)
        return None, f"{type(fault).__name__}: {fault}"[:500], True


def _next_step(task: str, key: str, attempt: int, outcome, first_attempt_at, settings: Settings) -> str:
    """After an attempt of ``task`` for ``key`` (a job's uuid or a batch's id): done on a 2xx, else the
    next attempt after its delay, or given up past WEBHOOK_RETRY_SECONDS or for a URL that never will."""
    status_code, error, retry = outcome
    if status_code is not None and 200 <= status_code < 300:
        logger.info("webhook of %s delivered (attempt %d)", key, attempt, extra={"uuid": key})
        return f"delivered: {status_code}"

    delay = retry_delay(attempt, settings.WEBHOOK_FIRST_RETRY)
    elapsed = (utcnow() - first_attempt_at).total_seconds()
    if not retry or elapsed + delay > settings.WEBHOOK_RETRY_SECONDS:
        logger.warning(
            "webhook of %s given up after %d attempts: %s", key, attempt, error or status_code, extra={"uuid": key}
        )
        return "given up"
    send_delivery(key, attempt + 1, delay, task=task)
    return f"attempt {attempt} failed ({error or status_code}); next in {delay}s"


def _attempt(callback_url: str, body: bytes, prediction_uuid: str, attempt: int, settings: Settings):
    """(the receiver's status code or None, why there was none, whether to try again), or BUSY
    when this destination's slots are all taken."""
    if not settings.WEBHOOK_SECRET:
        return None, "WEBHOOK_SECRET is not set: nothing can be signed", True
    try:
        target = vet_callback_url(callback_url, settings.WEBHOOK_ALLOWED_HOSTS, settings.WEBHOOK_ALLOW_PRIVATE)
    except CallbackRefused as refusal:
        return None, str(refusal)[:500], not refusal.permanent
    destination = (target.address, target.port)
    if not SLOTS.take(destination, settings.WEBHOOK_PER_DESTINATION):
        return BUSY
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": prediction_uuid,
        "X-Webhook-Attempt": str(attempt),
        SIGNATURE_HEADER: sign(settings.WEBHOOK_SECRET, body, int(time.time())),
    }
    try:
        status = webhook_http.post(
            target, body, headers, settings.WEBHOOK_CONNECT_TIMEOUT, settings.WEBHOOK_ATTEMPT_TIMEOUT
        )
    except (OSError, HTTPException) as error:
        return None, f"{type(error).__name__}: {error}"[:500], True
    finally:
        SLOTS.give_back(destination)
    return status, None, True


def _superseded(prediction_uuid: str, attempt: int) -> bool:
    """Accepted already, or this attempt (or a later one) was made: this message is a duplicate."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(
                WebhookDelivery.uuid == prediction_uuid,
                WebhookDelivery.status_code.between(200, 299) | (WebhookDelivery.attempt >= attempt),
            )
        )
        or 0
    ) > 0


@shared_task(name=REQUEUE_WEBHOOKS_TASK)
def requeue_unsent_webhooks() -> int:
    """Queue the first delivery of ended jobs that have a callback but no attempt after UNSENT_AFTER."""
    now = utcnow()
    window = (now - timedelta(seconds=current_settings().WEBHOOK_RETRY_SECONDS), now - timedelta(seconds=UNSENT_AFTER))
    attempted = select(WebhookDelivery.id).where(WebhookDelivery.uuid == Prediction.uuid).exists()
    unsent = queue_first_deliveries(
        select(Prediction.uuid)
        .where(
            Prediction.callback_url.is_not(None),
            Prediction.status != PENDING,
            ~attempted,
            Prediction.updated_at.between(*window),
        )
        .limit(REQUEUE_LIMIT),
        DELIVER_TASK,
    )
    unsent_batches = queue_first_deliveries(
        select(Batch.id)
        .where(Batch.callback_url.is_not(None), Batch.webhook_attempts == 0, Batch.completed_at.between(*window))
        .limit(REQUEUE_LIMIT),
        DELIVER_BATCH_TASK,
    )
    if unsent or unsent_batches:
        logger.warning("queued again the unsent webhooks of %d jobs, %d batches", len(unsent), len(unsent_batches))
    return len(unsent) + len(unsent_batches)
