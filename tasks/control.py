"""Remote control on the embedded broker starts clean: a worker drops the control messages left for it.

On the filesystem broker a command broadcast while a worker is down (``celery control ...`` that got
"No nodes replied") stays a file in that worker's mailbox queue, and the worker would run it at its
next start, long after the operator gave up on it. RabbitMQ needs none of this: a mailbox queue there
expires with its worker.
"""

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def drop_stale_control_messages(sender, instance, **_):
    """At ``celeryd_init`` (``tasks/lifecycle.py``), before the worker listens: remove its mailbox's
    message files (``<ms>_<uuid>.<queue>.msg``)."""
    app = instance.app
    folder = app.conf.broker_transport_options.get("data_folder_in")
    if not app.conf.broker_url.startswith("filesystem://") or not folder:
        return
    suffix = f".{app.control.mailbox.get_queue(sender).name}.msg"
    stale = [path for path in Path(folder).iterdir() if path.name.endswith(suffix)]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        logger.warning("dropped %d control message(s) sent to %s while it was down", len(stale), sender)
