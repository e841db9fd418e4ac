"""Adaptive batching that loses nothing: celery-batches with late acks made safe.

The worker's consumer buffers task messages and hands them to a pool process
as one batch when ``batch_max_size`` have arrived or ``batch_max_wait``
seconds have passed, so a lone request is classified almost at once while a
busy queue fills whole batches (every ack frees a prefetch slot, and the next
batch is what arrived meanwhile).

celery-batches acks a batch even when its run raised or its pool process
died. Here a batch is acked only when ``run`` returned True (its results are
committed); otherwise every message is requeued for another try.
"""
import logging

from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task

logger = logging.getLogger(__name__)


class NoLossBatches(Batches):
    """A batch task whose messages are acked only after ``run(requests)`` returned True."""

    acks_late = True

    def Strategy(self, task, app, consumer):
        self.flush_every = app.conf.batch_max_size
        self.flush_interval = app.conf.batch_max_wait
        return super().Strategy(task, app, consumer)

    def __call__(self, *args, **kwargs):
        with self.app.flask_app.app_context():
            return self.run(*args, **kwargs)

    def flush(self, requests):
        batch = ([SimpleRequest.from_request(r) for r in requests],)

        def on_return(committed):
            if committed is True:
                for request in requests:
                    request.acknowledge()
            else:
                requeue(f"run returned {committed!r}")

        def requeue(reason):
            logger.warning("batch of %d not committed (%s); requeued", len(requests), reason)
            for request in requests:
                request.reject(requeue=True)

        # apply_batches_task returns None when run raised.
        return self._pool.apply_async(
            apply_batches_task, (self, batch, 0, None),
            callback=on_return, error_callback=lambda error: requeue(repr(error)),
        )
