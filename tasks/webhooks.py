"""The webhook delivery task: POST a job's final result, signed, and record the attempt.

Runs in the webhook worker (``tasks.webhook_worker``), a thread pool on its own queue, so
receivers' slowness costs waiting threads, not the inference processes. A failed attempt
is published again after a growing delay (``jobs.webhooks``) until ``WEBHOOK_RETRY_SECONDS``
after the first attempt, then given up. Delivery is at least once: an attempt is skipped when
the webhook was already accepted (2xx) or this attempt, or a later one, is already recorded (a
duplicate message); a crash between the receiver's answer and its record sends it twice, so
receivers should treat the uuid as the key.

``requeue_unsent_webhooks`` (beat, every minute) catches a first delivery that was never queued
(the broker refused the publish just as the job ended): an ended job with a callback and no
attempt UNSENT_AFTER seconds after its end is queued again.
"""

import json
import logging
import time
from datetime import timedelta
from http.client import HTTPException

from celery import shared_task
from sqlalchemy import func, select

from config.settings import current_settings
from jobs.broker import DELIVER_TASK, REQUEUE_WEBHOOKS_TASK, retry_delay
from jobs.callbacks import CallbackRefused, vet_callback_url
from jobs.database import db
from jobs.records import PENDING, Prediction, utcnow
from jobs.signing import SIGNATURE_HEADER, sign
from jobs.webhooks import WebhookDelivery, send_delivery
from tasks import webhook_http

logger = logging.getLogger(__name__)
USER_AGENT = "imgsvc-webhooks/1"
UNSENT_AFTER = 300  # seconds after a job's end with no attempt recorded before its delivery is queued again
REQUEUE_LIMIT = 500


@shared_task(name=DELIVER_TASK, acks_late=True)
def deliver_webhook(prediction_uuid: str, attempt: int) -> str:
    """One attempt; returns what happened (for the worker's log)."""
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
    status_code, error = _attempt(callback_url, body, prediction_uuid, attempt, settings)
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
    if status_code is not None and 200 <= status_code < 300:
        logger.info("webhook of %s delivered (attempt %d)", prediction_uuid, attempt, extra={"uuid": prediction_uuid})
        return f"delivered: {status_code}"

    delay = retry_delay(attempt, settings.WEBHOOK_FIRST_RETRY)
    elapsed = (utcnow() - first_attempt_at).total_seconds()
    if elapsed + delay > settings.WEBHOOK_RETRY_SECONDS:
        logger.warning(
            "webhook of %s given up after %d attempts: %s",
            prediction_uuid,
            attempt,
            error or status_code,
            extra={"uuid": prediction_uuid},
        )
        return "given up"
    send_delivery(prediction_uuid, attempt + 1, delay)
    return f"attempt {attempt} failed ({error or status_code}); next in {delay}s"


def _attempt(
    callback_url: str, body: bytes, prediction_uuid: str, attempt: int, settings
) -> tuple[int | None, str | None]:
    """The receiver's status code, or None and why there was none."""
    if not settings.WEBHOOK_SECRET:
        return None, "WEBHOOK_SECRET is not set: nothing can be signed"
    try:
        target = vet_callback_url(callback_url, settings.WEBHOOK_ALLOWED_HOSTS, settings.WEBHOOK_ALLOW_PRIVATE)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Webhook-Id": prediction_uuid,
            "X-Webhook-Attempt": str(attempt),
            SIGNATURE_HEADER: sign(settings.WEBHOOK_SECRET, body, int(time.time())),
        }
        return webhook_http.post(target, body, headers), None
    except CallbackRefused as error:
        return None, str(error)[:500]
    except (OSError, HTTPException) as error:
        return None, f"{type(error).__name__}: {error}"[:500]


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
    attempted = select(WebhookDelivery.id).where(WebhookDelivery.uuid == Prediction.uuid).exists()
    unsent = db.session.scalars(
        select(Prediction.uuid)
        .where(
            Prediction.callback_url.is_not(None),
            Prediction.status != PENDING,
            ~attempted,
            Prediction.updated_at.between(
                now - timedelta(seconds=current_settings().WEBHOOK_RETRY_SECONDS),
                now - timedelta(seconds=UNSENT_AFTER),
            ),
        )
        .limit(REQUEUE_LIMIT)
    ).all()
    db.session.rollback()
    for prediction_uuid in unsent:
        send_delivery(prediction_uuid, attempt=1, delay=0)
    if unsent:
        logger.warning("queued again the unsent webhooks of %d jobs", len(unsent))
    return len(unsent)
