"""The embedded broker (jobs/embedded_broker.py) with real processes on a real SQLite file.

Concurrent writers and readers never see a half-written message and never share one; a message
held by a killed process comes back with its delivery counted; one delivered too often is
dead-lettered; fanout reaches other processes.
"""

import multiprocessing
import os
import signal
import time

from kombu import Connection, Exchange, Queue

import jobs.embedded_broker  # noqa: F401  registers embedded://
from tests.support.polling import until

WRITERS, READERS, PER_WRITER = 4, 3, 150
QUEUE = Queue("jobs", Exchange("jobs"), routing_key="jobs")


def options(path, **extra) -> dict:
    return {"path": str(path), **extra}


def write(path, writer: int) -> None:
    with Connection("embedded://", transport_options=options(path)) as connection:
        producer = connection.Producer()
        for n in range(PER_WRITER):
            # Bodies of varying size, some large, so a torn write would show as a broken body.
            body = {"writer": writer, "n": n, "padding": "x" * (n * 97 % 20000)}
            producer.publish(body, exchange=QUEUE.exchange, routing_key="jobs", declare=[QUEUE])


def read(path, results, stop) -> None:
    seen = []

    def on_message(body, message):
        assert body["padding"] == "x" * (body["n"] * 97 % 20000)
        seen.append((body["writer"], body["n"]))
        message.ack()

    with (
        Connection("embedded://", transport_options=options(path)) as connection,
        connection.Consumer(QUEUE, callbacks=[on_message]),
    ):
        while not stop.is_set():
            try:
                connection.drain_events(timeout=0.2)
            except TimeoutError:
                pass
    results.put(seen)


def drain(connection, queue=QUEUE, count=1, timeout=10.0) -> list:
    """Up to ``count`` messages taken (and left unacked) within ``timeout`` seconds."""
    taken = []
    with connection.Consumer(queue, callbacks=[lambda body, message: taken.append((body, message))]):
        deadline = time.monotonic() + timeout
        while len(taken) < count and time.monotonic() < deadline:
            try:
                connection.drain_events(timeout=0.2)
            except TimeoutError:
                pass
    return taken


def test_concurrent_writers_and_readers_deliver_every_message_once_and_whole(tmp_path):
    path = tmp_path / "broker.sqlite"
    context = multiprocessing.get_context("spawn")
    results, stop = context.Queue(), context.Event()
    readers = [context.Process(target=read, args=(path, results, stop)) for _ in range(READERS)]
    writers = [context.Process(target=write, args=(path, n)) for n in range(WRITERS)]
    for process in readers + writers:
        process.start()
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    with Connection("embedded://", transport_options=options(path)) as connection:
        until(lambda: not connection.default_channel._size("jobs"), "the jobs queue drained", 60, interval=0.05)
    stop.set()
    seen = [item for _ in readers for item in results.get(timeout=60)]
    for process in readers:
        process.join(30)
        assert process.exitcode == 0
    assert sorted(seen) == [(writer, n) for writer in range(WRITERS) for n in range(PER_WRITER)]


def hold_one(path, ready) -> None:
    """Take one message and never ack it, until killed."""
    with Connection("embedded://", transport_options=options(path)) as connection:
        assert drain(connection)
        ready.set()
        time.sleep(600)


def test_a_message_held_by_a_killed_process_comes_back_with_its_delivery_counted(tmp_path):
    path = tmp_path / "broker.sqlite"
    with Connection("embedded://", transport_options=options(path)) as connection:
        connection.Producer().publish({"n": 1}, exchange=QUEUE.exchange, routing_key="jobs", declare=[QUEUE])
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        holder = context.Process(target=hold_one, args=(path, ready))
        holder.start()
        assert ready.wait(60)
        assert drain(connection, timeout=0.5) == []  # held: nobody else gets it
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        ((body, message),) = drain(connection, timeout=10)
        assert body == {"n": 1}
        assert message.headers["x-delivery-count"] == 1
        assert message.delivery_info["redelivered"] is True
        message.ack()
        assert connection.default_channel._size("jobs") == 0


def test_a_message_delivered_more_than_the_limit_is_dead_lettered(tmp_path):
    path = tmp_path / "broker.sqlite"
    with Connection("embedded://", transport_options=options(path, delivery_limit=3)) as connection:
        connection.Producer().publish({"n": 1}, exchange=QUEUE.exchange, routing_key="jobs", declare=[QUEUE])
        counts = []
        for _ in range(3):
            ((_, message),) = drain(connection)
            counts.append(message.headers.get("x-delivery-count"))
            message.reject(requeue=True)
        assert counts == [None, 1, 2]
        assert drain(connection, timeout=0.5) == []
        assert connection.default_channel._size("jobs.dead") == 1


def test_a_message_rejected_for_good_is_dead_lettered_and_an_acked_one_is_gone(tmp_path):
    path = tmp_path / "broker.sqlite"
    with Connection("embedded://", transport_options=options(path)) as connection:
        producer = connection.Producer()
        for n in range(2):
            producer.publish({"n": n}, exchange=QUEUE.exchange, routing_key="jobs", declare=[QUEUE])
        (first, _), (second, rejected) = [(body, message) for body, message in drain(connection, count=2)]
        assert (first, second) == ({"n": 0}, {"n": 1})
        rejected.reject(requeue=False)
        channel = connection.default_channel
        assert channel._size("jobs.dead") == 1
        assert channel.database.execute("SELECT count(*) FROM messages WHERE queue = 'jobs'")[0][0] == 1


def listen(path, got) -> None:
    queue = Queue("listener", Exchange("broadcast", "fanout"))
    with Connection("embedded://", transport_options=options(path)) as connection:
        taken = drain(connection, queue=queue, timeout=30)
        got.put([body for body, _ in taken])


def test_fanout_reaches_a_queue_bound_in_another_process(tmp_path):
    path = tmp_path / "broker.sqlite"
    context = multiprocessing.get_context("spawn")
    got = context.Queue()
    listener = context.Process(target=listen, args=(path, got))
    listener.start()
    with Connection("embedded://", transport_options=options(path)) as connection:
        channel = connection.default_channel
        until(
            lambda: channel.database.execute("SELECT 1 FROM bindings WHERE exchange = 'broadcast'"),
            "the listener bound its queue",
            30,
            interval=0.05,
        )
        exchange = Exchange("broadcast", "fanout")
        connection.Producer().publish({"hello": "all"}, exchange=exchange, declare=[exchange])
        assert got.get(timeout=30) == [{"hello": "all"}]
    listener.join(10)


def test_a_holder_is_gone_only_when_its_process_on_this_host_is():
    assert jobs.embedded_broker.holder_alive("other-host:1:1")
    assert jobs.embedded_broker.holder_alive(jobs.embedded_broker.holder_name())
    assert not jobs.embedded_broker.holder_alive(jobs.embedded_broker.holder_name().rsplit(":", 1)[0] + ":0")
