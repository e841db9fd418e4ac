"""The embedded broker of ``make run`` with no configuration: a kombu transport on one SQLite file.

It replaces kombu's filesystem transport, which wrote each message file in place and so let a
reader parse a half-written one (``JSONDecodeError``, celery/kombu#1551, which killed the worker),
listed the whole folder for every message (a 10,000-image backlog made each get slower), and
forgot a message once read, so a worker killed mid-batch lost its unacked jobs to the sweeper.

Here a message is a row, written in one transaction (a reader sees all of it or nothing), taken
by one atomic ``UPDATE … RETURNING`` (two consumers never get the same row), deleted only when
acked, and given back when rejected, at a clean shutdown, or when the process holding it is gone.
Each take counts a delivery, as a RabbitMQ quorum queue does: the message carries
``x-delivery-count``, and one taken more than ``delivery_limit`` times is moved to
``<queue>.dead`` instead of delivered, as a quorum queue's ``x-delivery-limit`` dead-letters it.

Consumers poll. ``PRAGMA data_version`` tells a connection whether anyone else wrote since it last
looked, so an idle poll costs no table read and the polling interval can be a few milliseconds.
Fanout (Celery's remote control) goes through a bindings table, so it crosses processes.
"""

import json
import os
import socket
import sqlite3
import threading
import time
from queue import Empty

from kombu.transport import TRANSPORT_ALIASES, virtual

SCHEME = "embedded"
TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"

# Seconds between checks for messages held by processes that are gone (killed, crashed).
RECOVER_EVERY = 2.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    tag TEXT NOT NULL,
    payload TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    holder TEXT
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, holder, id);
CREATE INDEX IF NOT EXISTS messages_tag ON messages (tag);
CREATE INDEX IF NOT EXISTS messages_holder ON messages (holder);
CREATE TABLE IF NOT EXISTS bindings (exchange TEXT NOT NULL, queue TEXT NOT NULL, PRIMARY KEY (exchange, queue));
"""


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (None if there is no such process), so a
    reused pid is not taken for the process that held a message."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def holder_name(pid: int | None = None) -> str:
    """Who holds a taken message: host, pid and the process's start time."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_started(pid)}"


def holder_alive(holder: str) -> bool:
    """Whether the process named by ``holder`` still runs; a holder on another host counts as alive."""
    host, pid, started = holder.rsplit(":", 2)
    if host != socket.gethostname():
        return True
    return _started(int(pid)) == started


class Database:
    """The broker file, opened once per process (a connection is not carried across fork)."""

    def __init__(self, path: str):
        self.path = path
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self.holder = ""
        self.writes = 0  # by this connection, which its own data_version does not count

    def connection(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            self.holder = holder_name()
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            # A commit survives a crash of any process; only a power cut may lose the last ones.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def execute(self, sql: str, parameters=()) -> list:
        with self._lock:
            rows = self.connection().execute(sql, parameters).fetchall()
            if not sql.startswith("SELECT"):
                self.writes += 1
            return rows

    def version(self) -> tuple[int, int]:
        """Changes whenever anyone wrote: another connection (data_version) or this one."""
        with self._lock:
            return self.connection().execute("PRAGMA data_version").fetchone()[0], self.writes


class QoS(virtual.QoS):
    """Acks delete the row; rejects and restores give it back (or dead-letter it)."""

    def ack(self, delivery_tag):
        self.channel.database.execute("DELETE FROM messages WHERE tag = ?", (delivery_tag,))
        super().ack(delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if requeue:
            self.channel.release(delivery_tag)
        else:
            self.channel.bury(delivery_tag)
        self._quick_ack(delivery_tag)


class Channel(virtual.Channel):
    QoS = QoS
    supports_fanout = True

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        options = connection.client.transport_options
        self.database = connection.database
        self.delivery_limit = options.get("delivery_limit")
        self._empty_at = {}  # queue -> the database's version when it was last found empty
        self._recovered_at = 0.0

    # --- messages ----------------------------------------------------------------------------
    def _put(self, queue, message, **kwargs):
        tag = message["properties"]["delivery_tag"]
        self.database.execute(
            "INSERT INTO messages (queue, tag, payload) VALUES (?, ?, ?)", (queue, tag, json.dumps(message))
        )

    def _get(self, queue, timeout=None):
        self._recover_now_and_then()
        version = self.database.version()
        if self._empty_at.get(queue) == version:
            raise Empty()
        while True:
            rows = self.database.execute(
                "UPDATE messages SET holder = ?, deliveries = deliveries + 1 WHERE id = "
                "(SELECT id FROM messages WHERE queue = ? AND holder IS NULL ORDER BY id LIMIT 1) "
                "RETURNING id, payload, deliveries",
                (self.database.holder, queue),
            )
            if not rows:
                # data_version from before the look (a write since then shows), this connection's own
                # writes from after it (the look itself is an UPDATE).
                self._empty_at[queue] = (version[0], self.database.writes)
                raise Empty()
            row_id, payload, deliveries = rows[0]
            if self.delivery_limit is None or deliveries <= self.delivery_limit:
                break
            dead = f"{queue}.dead"  # taken too often: dead-lettered, never delivered again
            self.database.execute("UPDATE messages SET queue = ?, holder = NULL WHERE id = ?", (dead, row_id))
        message = json.loads(payload)
        if deliveries > 1:
            # As RabbitMQ's quorum queues say it: how often the message was delivered before.
            message.setdefault("headers", {})["x-delivery-count"] = deliveries - 1
            message["properties"].setdefault("delivery_info", {})["redelivered"] = True
        return message

    def release(self, delivery_tag) -> None:
        """Give a taken message back to its queue, at its old place."""
        self.database.execute("UPDATE messages SET holder = NULL WHERE tag = ?", (delivery_tag,))

    def bury(self, delivery_tag) -> None:
        """A message rejected for good goes to ``<queue>.dead``, as RabbitMQ dead-letters it."""
        self.database.execute(
            "UPDATE messages SET queue = queue || '.dead', holder = NULL WHERE tag = ?", (delivery_tag,)
        )

    def _restore(self, message):
        self.release(message.delivery_tag)

    def _recover_now_and_then(self) -> None:
        """Messages held by a process that is gone (killed mid-batch) go back to their queues."""
        if time.monotonic() - self._recovered_at < RECOVER_EVERY:
            return
        self._recovered_at = time.monotonic()
        holders = self.database.execute("SELECT DISTINCT holder FROM messages WHERE holder IS NOT NULL")
        for (holder,) in holders:
            if not holder_alive(holder):
                self.database.execute("UPDATE messages SET holder = NULL WHERE holder = ?", (holder,))

    def _size(self, queue):
        return self.database.execute("SELECT count(*) FROM messages WHERE queue = ? AND holder IS NULL", (queue,))[0][0]

    def _purge(self, queue):
        count = self._size(queue)
        self.database.execute("DELETE FROM messages WHERE queue = ? AND holder IS NULL", (queue,))
        return count

    def _delete(self, queue, *args, **kwargs):
        self.database.execute("DELETE FROM messages WHERE queue = ?", (queue,))
        self.database.execute("DELETE FROM bindings WHERE queue = ?", (queue,))

    def _has_queue(self, queue, **kwargs):
        return True

    def _new_queue(self, queue, **kwargs):
        pass

    # --- fanout ------------------------------------------------------------------------------
    def _queue_bind(self, exchange, routing_key, pattern, queue):
        if self.typeof(exchange).type == "fanout":
            self.database.execute("INSERT OR IGNORE INTO bindings (exchange, queue) VALUES (?, ?)", (exchange, queue))

    def _put_fanout(self, exchange, message, routing_key, **kwargs):
        for (queue,) in self.database.execute("SELECT queue FROM bindings WHERE exchange = ?", (exchange,)):
            self._put(queue, message)


class Transport(virtual.Transport):
    Channel = Channel
    driver_type = driver_name = "sqlite"
    # An idle poll is one PRAGMA (microseconds), so polling often costs little and keeps a lone
    # job's wait for the worker to a few milliseconds.
    polling_interval = 0.005

    implements = virtual.Transport.implements.extend(asynchronous=False, exchange_type=frozenset(["direct", "fanout"]))

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        self.database = Database(client.transport_options["path"])

    def driver_version(self):
        return sqlite3.sqlite_version
