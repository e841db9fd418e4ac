"""Fair sharing's logic: which queue a job goes to, and which held requests the worker runs next."""

from types import SimpleNamespace

import pytest
from celeryconfig import celery_settings

from config.settings import load_settings
from jobs.broker import entities, job_queue_names
from jobs.queue import bulk_lane, queue_for
from tasks.batching import Pace, next_batch

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
