"""Remote control on the embedded broker starts clean: a worker drops the control messages left for it.

On the embedded broker a command broadcast while a worker is down (``celery control ...`` that got
"No nodes replied") stays in that worker's mailbox queue, and the worker would run it at its next
start, long after the operator gave up on it. RabbitMQ needs none of this: a mailbox queue there
expires with its worker.
"""

import logging

from jobs.broker import is_rabbitmq

logger = logging.getLogger(__name__)


def drop_stale_control_messages(sender, instance, **_):
    """At ``celeryd_init`` (``tasks/lifecycle.py``), before the worker listens: purge its mailbox queue."""
    app = instance.app
    if is_rabbitmq(app.conf.broker_url):
        return
    mailbox = app.control.mailbox.get_queue(sender).name
    with app.connection_for_write() as connection:
        stale = connection.default_channel.queue_purge(mailbox)
    if stale:
        logger.warning("dropped %d control message(s) sent to %s while it was down", stale, sender)
