"""``python -m deploy.supervise``: ``make run``'s process manager, keeping every Procfile line running.

honcho, which ``make run`` used before, stops every process as soon as one exits, so one crash took
the whole service down. Here a process that exits is started again, after a pause that doubles with
each quick exit (1 s, 2 s, ... 30 s; back to 1 s once it has stayed up 30 s), and the restart is
logged while the others keep serving. Each process runs in a process group of its own, so what it
leaves behind (a prefork pool, nginx's workers) goes with it before the restart. Ctrl-C or SIGTERM
stops them all: SIGTERM to every group, SIGKILL to whatever is left after ``STOP_TIMEOUT`` seconds.

Output is relayed line by line behind the process's name, as honcho did, and each process's pid is
kept in ``<INSTANCE_PATH>/pids/<name>.pid`` for the operator (docs/operations.md). The Procfile stays the one
list of processes; each line runs through ``sh`` (``exec`` in front), so ``${NAME:-default}`` works.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from config.settings import PROJECT_ROOT, load_settings

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# A process that stayed up this long crashed for a new reason: its next restart waits FIRST_BACKOFF again.
STABLE_AFTER = 30.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.2

_output_lock = threading.Lock()


def read_procfile(path: Path) -> dict[str, str]:
    """``name: command`` lines, in order; blank lines and ``#`` comments skipped."""
    processes = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


def say(name: str, text: str) -> None:
    with _output_lock:
        sys.stdout.write(f"{datetime.now():%H:%M:%S} {name:<9}| {text}\n")
        sys.stdout.flush()


@dataclass
class Supervised:
    name: str
    command: str
    pid_file: Path
    popen: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff: float = FIRST_BACKOFF
    restart_at: float | None = None
    restarts: int = 0
    relays: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.popen = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {self.command}"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        self.pid_file.write_text(f"{self.popen.pid}\n")
        relay = threading.Thread(target=self._relay, args=(self.popen.stdout,), daemon=True)
        relay.start()
        self.relays.append(relay)
        say("supervise", f"started {self.name} (pid {self.popen.pid})")

    def _relay(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            say(self.name, raw.decode(errors="replace").rstrip("\n"))
        stream.close()

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.popen.pid, signum)
        except ProcessLookupError:  # the group is already empty
            pass

    def check(self, now: float) -> None:
        """Schedule a restart if the process has exited; start it when its pause is over."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                self.start()
            return
        code = self.popen.poll()
        if code is None:
            return
        self.signal_group(signal.SIGKILL)  # what it left behind must not hold its sockets or jobs
        if now - self.started_at >= STABLE_AFTER:
            self.backoff = FIRST_BACKOFF
        self.restart_at = now + self.backoff
        say("supervise", f"{self.name} (pid {self.popen.pid}) {describe_exit(code)}; restarting in {self.backoff:g} s")
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)


def describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def supervise(processes: dict[str, str], pid_folder: Path) -> int:
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    pid_folder.mkdir(parents=True, exist_ok=True)
    supervised = [Supervised(name, command, pid_folder / f"{name}.pid") for name, command in processes.items()]
    for process in supervised:
        process.start()
    while not stopping.wait(POLL_INTERVAL):
        now = time.monotonic()
        for process in supervised:
            process.check(now)
    stop_all(supervised)
    return 0


def stop_all(supervised: list[Supervised]) -> None:
    say("supervise", "stopping every process")
    running = [process for process in supervised if process.popen.poll() is None and process.restart_at is None]
    for process in running:
        process.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(process.popen.poll() is None for process in running) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
    for process in supervised:
        if process.popen.poll() is None:
            say("supervise", f"{process.name} did not stop within {STOP_TIMEOUT:g} s: killed")
        process.signal_group(signal.SIGKILL)
        process.popen.wait()
        for relay in process.relays:
            relay.join(timeout=1)
        process.pid_file.unlink(missing_ok=True)
    say("supervise", "stopped")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.supervise", description=__doc__.split("\n")[0])
    parser.add_argument("--procfile", type=Path, default=PROJECT_ROOT / "Procfile")
    args = parser.parse_args(argv)
    return supervise(read_procfile(args.procfile), load_settings().INSTANCE_PATH / "pids")


if __name__ == "__main__":
    sys.exit(main())
