"""Private RabbitMQ and MariaDB servers on spare ports, for tests that stop and restart them.

The machine's shared servers (5672, 3306) must never be stopped, so outage tests
run their own instance, with every file in a temporary folder, and remove it after.
By default they listen on 127.0.0.1; the multi-host test binds them to a test host's
address and runs them inside that host (``wrap``: ``deploy.netns.Host.command``).
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from deploy.harness import free_port, same_host
from tests.support.polling import until

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # the Debian wrapper in /usr/sbin would su to the rabbitmq user
START_TIMEOUT = 60


LOOPBACK = "127.0.0.1"


def wait_for_port(
    port: int, process: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT, address: str = LOOPBACK
) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex((address, port)) == 0

    until(listening, lambda: f"something listening on {port}:\n{log.read_text(errors='replace')[-3000:]}", timeout)


class Server:
    """A server process in its own session, started and stopped on the same data folder."""

    def __init__(self, folder: Path, port: int, address: str = LOOPBACK, wrap=same_host):
        self.folder, self.port, self.address, self.wrap = folder, port, address, wrap
        self.process = None
        self.log = folder / "server.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict:
        return dict(os.environ)

    def start(self) -> float:
        """Start and wait until the port answers; returns the seconds it took."""
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.wrap(self.command()), env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_port(self.port, self.process, self.log, address=self.address)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class RabbitMQ(Server):
    """A RabbitMQ node of its own: node name, AMQP and distribution ports, Erlang cookie and files."""

    def __init__(
        self,
        folder: Path,
        address: str = LOOPBACK,
        wrap=same_host,
        node: str | None = None,
        port: int | None = None,
        dist_port: int | None = None,
        cookie: str | None = None,
    ):
        """``node``, the ports and ``cookie`` are given for a cluster's members (``broker_cluster.py``)."""
        super().__init__(folder, port or free_port(), address, wrap)
        self.node = node or f"test-{uuid.uuid4().hex[:8]}@localhost"
        # The same for every start; rabbitmqctl talks from ports 10000 above it, so those must exist too.
        self.dist_port = dist_port or free_port()
        if cookie is not None:  # the nodes of one cluster share it; Erlang wants it readable by its owner only
            cookie_file = folder / ".erlang.cookie"
            cookie_file.write_text(cookie)
            cookie_file.chmod(0o600)
        (folder / "enabled_plugins").write_text("[].\n")  # no management plugin: it would take port 15672
        (folder / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's, which names the shared node
        # guest logs in from localhost only (RabbitMQ's default), unless the clients are on other hosts.
        users = "loopback_users.guest = true" if address == LOOPBACK else "loopback_users = none"
        (folder / "rabbitmq.conf").write_text(users + "\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.address}:{self.port}//"

    def env(self) -> dict:
        folder = self.folder
        return {
            **os.environ,
            "HOME": str(folder),  # the Erlang cookie goes here, for rabbitmqctl too
            "ERL_CRASH_DUMP": str(folder / "erl_crash.dump"),  # not the project folder, for rabbitmqctl too
            "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": self.address,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(folder / "plugins"),
            "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid"),
        }

    def command(self) -> list[str]:
        return [str(RABBITMQ_BIN / "rabbitmq-server")]

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """``rabbitmqctl -n <this node> args`` run on this node's host; returns its output, raises on failure."""
        finished = subprocess.run(
            self.wrap([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args]),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if finished.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.node}: {finished.stdout}{finished.stderr}")
        return finished.stdout

    def kill(self) -> None:
        """SIGKILL to the node's whole process group: a crash, with no chance to tell its peers."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """A clean stop through rabbitmqctl, as an operator would; durable messages stay on disk."""
        if self.process is None or self.process.poll() is not None:
            return
        subprocess.run(
            self.wrap([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, "stop"]),
            env=self.env(),
            capture_output=True,
            timeout=60,
        )
        super().stop()


class MariaDB(Server):
    """A mariadbd of its own on a fresh data folder; root logs in over TCP without a password."""

    def __init__(self, folder: Path, address: str = LOOPBACK, wrap=same_host):
        super().__init__(folder, free_port(), address, wrap)
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={folder / 'data'}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    @property
    def url(self) -> str:
        return f"mysql+mysqldb://root@{self.address}:{self.port}"

    def command(self) -> list[str]:
        folder = self.folder
        # Clients on other hosts: no reverse DNS lookup of their addresses (none answers on a test network).
        remote = [] if self.address == LOOPBACK else ["--skip-name-resolve"]
        return [
            "mariadbd",
            "--no-defaults",
            f"--datadir={folder / 'data'}",
            "--user=root",
            f"--port={self.port}",
            f"--bind-address={self.address}",
            *remote,
            f"--socket={folder / 'mariadb.sock'}",
            f"--pid-file={folder / 'mariadb.pid'}",
            "--innodb-buffer-pool-size=32M",
            "--skip-log-bin",
        ]

    def start(self) -> float:
        """As ``Server.start``; clients on other hosts may then log in as root too."""
        seconds = super().start()
        if self.address != LOOPBACK:
            subprocess.run(
                [
                    "mariadb",
                    f"--socket={self.folder / 'mariadb.sock'}",
                    "-uroot",
                    "-e",
                    "CREATE USER IF NOT EXISTS root@'%'; GRANT ALL ON *.* TO root@'%' WITH GRANT OPTION",
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
        return seconds
