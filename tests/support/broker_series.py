"""The RabbitMQ series the deploy config relies on: checked against the files and the live broker."""

# The broker's series the dashboard and alerts use, as RabbitMQ's rabbitmq_prometheus serves them on
# :15692 (/metrics, and /metrics/detailed for per-queue figures); test_broker_metrics holds this
# record to the live endpoint.
RABBITMQ_SERIES = {
    "rabbitmq_detailed_queue_messages": {"queue", "vhost"},
    "rabbitmq_detailed_queue_messages_ready": {"queue", "vhost"},
    "rabbitmq_detailed_queue_messages_unacked": {"queue", "vhost"},
    "rabbitmq_global_messages_dead_lettered_delivery_limit_total": {"dead_letter_strategy", "queue_type"},
    "rabbitmq_global_messages_dead_lettered_expired_total": {"dead_letter_strategy", "queue_type"},
    "rabbitmq_global_messages_dead_lettered_rejected_total": {"dead_letter_strategy", "queue_type"},
    "rabbitmq_global_messages_delivered_total": {"protocol", "queue_type"},
    "rabbitmq_global_messages_received_total": {"protocol"},
    "rabbitmq_global_messages_redelivered_total": {"protocol", "queue_type"},
}
