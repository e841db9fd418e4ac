"""A RabbitMQ cluster of three nodes, each on its own test host (``deploy/netns.py``).

Each node is ``rabbit@<host name>`` with its own data, log and config files in a folder of its own
(``tests.servers.RabbitMQ``), AMQP on port 5672 and epmd on 4369 of its own host's network (the
machine's own broker, in the root namespace, is never touched). Every host's ``/etc/hosts`` names all
three, and the nodes share one Erlang cookie. The second and third nodes join the first with
``rabbitmqctl join_cluster``; a node killed and started again on the same folder rejoins by itself.
"""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from deploy.netns import Network
from tests.support.polling import until
from tests.support.servers import RabbitMQ

AMQP_PORT = 5672
DIST_PORT = 25672  # RabbitMQ's own defaults: each node has a network of its own
CLUSTER_TIMEOUT = 120


class BrokerCluster:
    def __init__(self, network: Network, folder: Path, size: int = 3):
        self.hosts = [network.add_host(f"broker-{index}") for index in range(1, size + 1)]
        names = {host.name: host.address for host in self.hosts}
        cookie = uuid.uuid4().hex.upper()
        self.nodes: dict[str, RabbitMQ] = {}
        for host in self.hosts:
            host.name_hosts(names)
            node_folder = folder / host.name
            node_folder.mkdir()
            self.nodes[f"rabbit@{host.name}"] = RabbitMQ(
                node_folder,
                host.address,
                host.command,
                node=f"rabbit@{host.name}",
                port=AMQP_PORT,
                dist_port=DIST_PORT,
                cookie=cookie,
            )

    @property
    def url(self) -> str:
        """Celery's broker failover list: every node's URL, separated by ``;``."""
        return ";".join(node.url for node in self.nodes.values())

    def start(self) -> None:
        """Start every node, join the others to the first, and wait until all three run as one cluster."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(RabbitMQ.start, self.nodes.values()))
        first, *others = self.nodes.values()
        for node in others:
            for step in (["stop_app"], ["join_cluster", first.node], ["start_app"]):
                ctl_until_it_works(node, *step)
        self.wait_until_running(list(self.nodes))

    def remove(self) -> None:
        for node in self.nodes.values():
            node.remove()

    def running_nodes(self, asked: str) -> list[str]:
        """The cluster's running nodes, as node ``asked`` sees them (retried while a node just started
        answers that its ``rabbit`` app is not running yet)."""
        status = ctl_until_it_works(self.nodes[asked], "cluster_status", "--formatter", "json")
        return json.loads(status)["running_nodes"]

    def wait_until_running(self, expected: list[str], asked: str | None = None) -> None:
        asked = asked or expected[0]
        until(
            lambda: sorted(self.running_nodes(asked)) == sorted(expected),
            lambda: f"running nodes {self.running_nodes(asked)}, expected {expected}",
            CLUSTER_TIMEOUT,
            interval=0.5,
        )

    def queues(self, asked: str) -> dict[str, dict]:
        """Queue name → its type, leader, members and online members, as node ``asked`` reports them."""
        output = self.nodes[asked].ctl(
            "list_queues", "-q", "--formatter", "json", "name", "type", "leader", "members", "online"
        )
        return {queue["name"]: queue for queue in json.loads(output)}

    def kill(self, node: str) -> None:
        self.nodes[node].kill()

    def restart(self, node: str) -> None:
        """Start a killed node again on its own folder; it rejoins the cluster it was in."""
        self.nodes[node].start()


def ctl_until_it_works(node: RabbitMQ, *args: str) -> str:
    """``rabbitmqctl`` on a node that has just started: on a busy machine its first answer may take
    longer than the CLI's connection setup allows, so a failure is retried until CLUSTER_TIMEOUT."""
    deadline = time.monotonic() + CLUSTER_TIMEOUT
    while True:
        try:
            return node.ctl(*args)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
