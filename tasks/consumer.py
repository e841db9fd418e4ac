"""The workers' consumer: Celery's own, without its native-delayed-delivery step.

Celery adds that step to every worker that consumes a quorum queue. At each (re)connection it
declares its delay exchanges on every node of the broker failover list, and retries a node that is
down for about ten seconds before the consumer may go on. With one node of a cluster gone, each
reconnection then stalls, and with short heartbeats the broker drops the stalled connection and the
cycle starts again: no job is taken while the node is down. The service never uses native delayed
delivery (jobs go to a direct exchange, and webhook retries wait in delay queues of their own, see
``jobs/webhook_schedule.py``), so the step is left out. ``celeryconfig.py`` names this class.
"""

from celery.worker.consumer import Consumer

DELAYED_DELIVERY_STEP = "celery.worker.consumer.delayed_delivery:DelayedDelivery"


class WorkerConsumer(Consumer):
    class Blueprint(Consumer.Blueprint):
        default_steps = [step for step in Consumer.Blueprint.default_steps if step != DELAYED_DELIVERY_STEP]
