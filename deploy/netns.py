"""Test hosts made of Linux network namespaces, so a deployment is proven across real network hops.

One bridge in the root namespace is the switch; each host is a namespace with loopback and one
``eth0``, joined to the bridge by a veth pair, on a private /24 chosen per run (10.213.x.0/24,
checked unused). The root namespace holds the bridge's address, so this process (the load client)
reaches every host. ``Host.command`` runs a program inside a host; ``Host.cut`` and ``Host.restore``
unplug and replug its cable; ``Host.name_hosts`` gives it an ``/etc/hosts`` of its own
(``/etc/netns/<namespace>/hosts``, which ``ip netns exec`` mounts over ``/etc/hosts``). Everything
(processes in the namespaces, links, namespaces, those files) is removed on exit, even after a
failure. Needs root and iproute2's ``ip``.
"""

import ipaddress
import os
import random
import shutil
import signal
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

SUBNET_POOL = "10.213.{}.0/24"
NETNS_ETC = Path("/etc/netns")


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be made here (not root, no ``ip``, no bridge support)."""


def ip(*args: str, check: bool = True) -> str:
    finished = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and finished.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {finished.stderr.strip()}")
    return finished.stdout


def require_netns() -> None:
    """Raise NetnsUnavailable saying what is missing."""
    if shutil.which("ip") is None:
        raise NetnsUnavailable("iproute2's `ip` is not installed (scripts/install-system-deps.sh installs it)")
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")


def free_subnet() -> ipaddress.IPv4Network:
    """A 10.213.x.0/24 that no address or route of this machine overlaps."""
    used = [
        ipaddress.ip_interface(word).network
        for line in ip("-o", "-4", "addr", "show").splitlines()
        for word in line.split()[3:4]
    ]
    for line in ip("-4", "route", "show", "table", "all").splitlines():
        destination = line.split()[0]
        if destination[0].isdigit():
            used.append(ipaddress.ip_network(destination if "/" in destination else f"{destination}/32", strict=False))
    for third in random.sample(range(1, 255), 254):
        subnet = ipaddress.ip_network(SUBNET_POOL.format(third))
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise NetnsUnavailable("no free 10.213.x.0/24 subnet")


@dataclass
class Host:
    """A machine on the test network: its namespace, its address, and the root-side end of its cable."""

    name: str
    namespace: str
    address: str
    cable: str

    def command(self, args: list[str], private_dirs: tuple[str, ...] = ()) -> list[str]:
        """``args`` run inside this host. Each folder in ``private_dirs`` is an empty tmpfs there:
        this host's own disk at that path, not the one the other hosts see."""
        if not private_dirs:
            return ["ip", "netns", "exec", self.namespace, *args]
        mounts = " && ".join(f'mount -t tmpfs tmpfs "${i + 1}"' for i in range(len(private_dirs)))
        script = f'{mounts} && shift {len(private_dirs)} && exec "$@"'
        return [
            "ip",
            "netns",
            "exec",
            self.namespace,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            *private_dirs,
            *args,
        ]

    @property
    def etc(self) -> Path:
        """The files ``ip netns exec`` mounts over ``/etc`` inside this host."""
        return NETNS_ETC / self.namespace

    def name_hosts(self, addresses: dict[str, str]) -> None:
        """Inside this host, each name resolves to its address (name → address); localhost and the machine's
        own name (which command-line tools such as rabbitmqctl name themselves after) to loopback."""
        self.etc.mkdir(parents=True, exist_ok=True)
        lines = [
            f"127.0.0.1 localhost {socket.gethostname()}",
            *(f"{address} {name}" for name, address in addresses.items()),
        ]
        (self.etc / "hosts").write_text("\n".join(lines) + "\n")

    def cut(self) -> None:
        """Unplug the cable: packets to and from this host are dropped, its sockets stay open."""
        ip("link", "set", self.cable, "down")

    def restore(self) -> None:
        ip("link", "set", self.cable, "up")


@dataclass
class Network:
    """A switch and the hosts plugged into it; use as a context manager."""

    prefix: str = "mh"
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: dict = field(default_factory=dict)
    subnet: ipaddress.IPv4Network | None = None

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br{self.run_id}"  # interface names are at most 15 characters

    @property
    def gateway(self) -> str:
        """The root namespace's address on the switch: where the load client is."""
        return str(self.subnet.network_address + 1)

    def __enter__(self) -> "Network":
        require_netns()
        try:
            self.subnet = free_subnet()
            ip("link", "add", self.bridge, "type", "bridge")
            ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
        except Exception:
            self.close()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def add_host(self, name: str) -> Host:
        index = len(self.hosts) + 1
        host = Host(
            name,
            f"{self.prefix}-{self.run_id}-{name}",
            str(self.subnet.network_address + 10 + index),
            f"{self.prefix}{self.run_id}h{index}",
        )
        self.hosts[name] = host  # registered first, so close() removes whatever part was made
        ip("netns", "add", host.namespace)
        ip("link", "add", host.cable, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
        ip("link", "set", host.cable, "master", self.bridge, "up")
        ip("-n", host.namespace, "addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", host.namespace, "link", "set", "eth0", "up")
        ip("-n", host.namespace, "link", "set", "lo", "up")
        return host

    def close(self) -> None:
        """Kill what still runs in the hosts, then delete namespaces, cables and the switch."""
        for host in self.hosts.values():
            for pid in ip("netns", "pids", host.namespace, check=False).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            ip("netns", "del", host.namespace, check=False)
            shutil.rmtree(host.etc, ignore_errors=True)
            ip("link", "del", host.cable, check=False)  # normally gone with its namespace's end
        self.hosts.clear()
        ip("link", "del", self.bridge, check=False)
