"""Fair sharing's logic: which queue a job goes to, and which held requests the worker runs next."""

from types import SimpleNamespace

import pytest
from celeryconfig import celery_settings

from config.settings import load_settings
from jobs.broker import entities, job_queue_names
from jobs.queue import bulk_lane, queue_for
from tasks.batching import Pace, as_simple_request, deliveries, next_batch, parts_of, queue_of

SETTINGS = load_settings({"BULK_LANES": "4"})


def held(queue: str, name: str, count: int = 0) -> SimpleNamespace:
    """A held request as the worker sees it: the queue it came from and its delivery count."""
    return SimpleNamespace(
        name=name, delivery_info={"routing_key": queue}, request_dict={"x-delivery-count": count} if count else {}
    )


def names(batch) -> list[str]:
    return [request.name for request in batch]


def test_single_uploads_are_interactive_and_bulk_goes_to_its_clients_lane():
    assert queue_for(SETTINGS, bulk=False, client="key-a") == "inference"
    assert queue_for(SETTINGS, bulk=True, client="key-a") == f"inference.bulk.{bulk_lane('key-a', 4)}"


def test_clients_are_hashed_the_same_way_in_every_process_and_spread_over_every_lane():
    lane = bulk_lane("batch-7f3a", 16)
    assert lane == bulk_lane("batch-7f3a", 16)
    assert 0 <= lane < 16
    assert len({bulk_lane(f"batch-{n}", 16) for n in range(200)}) == 16


def test_the_worker_consumes_the_interactive_queue_and_every_lane_with_the_same_arguments():
    settings = load_settings({"CELERY_BROKER_URL": "amqp://127.0.0.1//", "BULK_LANES": "3"})
    queues = celery_settings(settings)["task_queues"]
    assert [queue.name for queue in queues] == job_queue_names("inference", 3)
    assert [queue.name for queue in queues] == ["inference", "inference.bulk.0", "inference.bulk.1", "inference.bulk.2"]
    for queue in queues:
        assert queue.queue_arguments["x-queue-type"] == "quorum"
        assert queue.queue_arguments["x-delivery-limit"] == settings.MAX_DELIVERIES + 1
        assert queue.queue_arguments["x-dead-letter-exchange"] == "inference.dead"


def test_interactive_requests_go_first_in_a_batch_of_their_own():
    requests = [held("inference.bulk.0", "a1"), held("inference", "single"), held("inference.bulk.0", "a2")]
    batch, _ = next_batch(requests, "inference", 32, 32, None)
    assert names(batch) == ["single"]


def test_a_returning_message_runs_alone_before_anything_else():
    requests = [held("inference", "single"), held("inference.bulk.0", "again", count=1)]
    assert names(next_batch(requests, "inference", 32, 32, None)[0]) == ["again"]


def test_bulk_lanes_are_taken_in_turn_whatever_order_their_work_came_in():
    early = [held("inference.bulk.3", f"a{n}") for n in range(10)]
    late = [held("inference.bulk.1", f"b{n}") for n in range(3)]
    batch, last = next_batch(early + late, "inference", 32, 6, None)
    assert names(batch) == ["b0", "a0", "b1", "a1", "b2", "a2"]
    assert last == "inference.bulk.3"


def test_batches_of_one_still_alternate_between_lanes():
    requests = [held("inference.bulk.0", f"a{n}") for n in range(5)] + [held("inference.bulk.1", "b0")]
    first, last = next_batch(requests, "inference", 32, 1, None)
    second, last = next_batch([r for r in requests if r not in first], "inference", 32, 1, last)
    third, _ = next_batch([r for r in requests if r not in first + second], "inference", 32, 1, last)
    assert names(first + second + third) == ["a0", "b0", "a1"]


@pytest.mark.parametrize(
    ("seconds_per_image", "size"),
    [(None, 1), (0.01, 32), (0.05, 8), (0.4, 1), (3.0, 1)],
)
def test_bulk_batches_are_sized_to_last_about_the_target(seconds_per_image, size):
    pace = Pace(32)
    if seconds_per_image is not None:
        pace.observe(10, 10 * seconds_per_image)
    assert pace.size() == size


def test_the_pace_follows_the_images_as_they_change():
    pace = Pace(32)
    pace.observe(1, 0.4)  # a flood of the costliest images
    assert pace.size() == 1
    for _ in range(8):
        pace.observe(32, 32 * 0.01)  # ordinary photos again
    assert pace.size() == 32


def test_the_bulk_lanes_are_among_the_entities_an_operator_deletes():
    queues, exchanges = entities("inference", 10, 3600, 2)
    assert {"inference", "inference.bulk.0", "inference.bulk.1"} <= set(queues)
    assert {"inference", "inference.bulk.0", "inference.bulk.1"} <= set(exchanges)


class Delivered:
    """A bulk message as the worker's consumer hands it over, recording how it was settled."""

    def __init__(self, jobs: list, queue: str = "inference.bulk.1", count: int = 0):
        self.args = (jobs,)
        self.delivery_info = {"routing_key": queue}
        self.request_dict = {"x-delivery-count": count} if count else {}
        self.settled: list[str] = []

    def acknowledge(self):
        self.settled.append("ack")

    def reject(self, requeue):
        self.settled.append(f"reject requeue={requeue}")


def test_a_bulk_message_becomes_one_part_per_job_on_its_lane():
    message = Delivered([["u1", "file:///1"], ["u2", "file:///2"]], count=2)
    parts = parts_of(message)
    assert [part.args for part in parts] == [("u1", "file:///1"), ("u2", "file:///2")]
    assert {queue_of(part) for part in parts} == {"inference.bulk.1"}
    assert [deliveries(part) for part in parts] == [2, 2]
    single = SimpleNamespace(args=("u3", "file:///3"))
    assert parts_of(single) == [single], "a single upload's message is held as it is"


def test_a_bulk_message_is_acked_once_every_part_was_committed():
    message = Delivered([["u1", "a"], ["u2", "b"], ["u3", "c"]])
    first, second, third = parts_of(message)
    first.acknowledge()
    second.acknowledge()
    assert message.settled == []
    third.acknowledge()
    assert message.settled == ["ack"]


def test_a_bulk_message_is_requeued_once_at_its_first_part_not_committed():
    message = Delivered([["u1", "a"], ["u2", "b"], ["u3", "c"]])
    first, second, third = parts_of(message)
    first.acknowledge()
    second.reject(requeue=True)
    third.reject(requeue=True)
    third.acknowledge()
    assert message.settled == ["reject requeue=True"]


def test_parts_of_a_returning_message_run_alone_and_parts_take_turns_with_other_lanes():
    back = parts_of(Delivered([["r1", "a"], ["r2", "b"]], queue="inference.bulk.1", count=1))
    a = parts_of(Delivered([["a1", "a"], ["a2", "b"]], queue="inference.bulk.2"))
    b = parts_of(Delivered([["b1", "a"], ["b2", "b"]], queue="inference.bulk.3"))
    held_now = [*a, *b, *back]
    batch, _ = next_batch(held_now, "inference", 32, 32, None)
    assert [part.args[0] for part in batch] == ["r1"]
    batch, _ = next_batch(a + b, "inference", 32, 4, None)
    assert [part.args[0] for part in batch] == ["a1", "b1", "a2", "b2"]


def test_the_task_gets_each_part_as_a_request_of_its_own():
    message = Delivered([["u1", "file:///1"]])
    message.name, message.hostname, message.ignore_result = "classify_image", "worker@host", True
    message.reply_to = message.correlation_id = None
    [simple] = [as_simple_request(part) for part in parts_of(message)]
    assert (simple.id, simple.args, simple.delivery_info) == ("u1", ("u1", "file:///1"), message.delivery_info)
