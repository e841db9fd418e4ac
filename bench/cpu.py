"""CPU time by process group, from /proc: what each part of the service costs per request and per image.

A snapshot reads every process once. Processes started by the benchmark (directly, or under deploy.supervise)
are put in a group by their command line, and a process none matches (a shell the supervisor runs a
command in) takes its parent's group. A process's time includes its children that exited
(``cutime``/``cstime`` of the parent that reaped them), so restarted pool processes still count.
The database and broker are the servers listening on their ports. "other" is whatever else kept
the cores busy: the rest of this shared machine.
"""

import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

TICKS = os.sysconf("SC_CLK_TCK")
LOAD_GENERATOR = "load generator"
OTHER = "other"
# The service's own processes, as the benchmarks report them (not the load generator or the rest).
SERVICE_GROUPS = (
    "nginx",
    "Gunicorn",
    "waiter",
    "worker",
    "webhooks",
    "beat",
    "flower",
    "supervise",
    "RabbitMQ",
    "MariaDB",
)
# First match wins; a process's command line is matched as its arguments, joined by spaces.
GROUPS = (
    ("nginx", re.compile(r"^nginx")),
    ("flower", re.compile(r"\bcelery .* flower\b")),
    ("beat", re.compile(r"\bcelery .* beat\b")),
    ("webhooks", re.compile(r"\bwebhook_worker\b")),
    ("waiter", re.compile(r"\bwebapp\.waiter\b")),
    ("worker", re.compile(r"\bcelery .* worker\b")),
    ("Gunicorn", re.compile(r"\bgunicorn\b")),
    ("supervise", re.compile(r"\bdeploy\.supervise\b")),
    ("profiler", re.compile(r"\bpy-spy\b")),
    ("limit", re.compile(r"\bmultiprocessing\b")),
)


def _stat(pid: str) -> tuple[int, float, float] | None:
    """(parent pid, own CPU seconds, CPU seconds of reaped children) of one process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, (int(fields[13]) + int(fields[14])) / TICKS


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def listener_pid(url: str) -> int | None:
    """The process listening on the TCP port of ``url`` (the shared MariaDB, the shared RabbitMQ)."""
    port = urlsplit(url).port
    listing = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    found = re.search(r"pid=(\d+)", listing)
    return int(found.group(1)) if found else None


def _process_table() -> tuple[dict, dict]:
    """Every process's ``_stat``, and each pid's children."""
    stats = {int(pid): stat for pid in os.listdir("/proc") if pid.isdigit() and (stat := _stat(pid))}
    children = defaultdict(list)
    for pid, (parent, _, _) in stats.items():
        children[parent].append(pid)
    return stats, children


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and every process below it, their reaped children included."""
    stats, children = _process_table()
    total, todo = 0.0, [pid]
    while todo:
        member = todo.pop()
        if member in stats:
            total += stats[member][1] + stats[member][2]
            todo.extend(children[member])
    return total


def machine_busy_seconds() -> float:
    """CPU time all cores spent on anything but idle and I/O wait, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


def _group_of(pid: int, inherited: str | None) -> str | None:
    """A process's group: its parent's, unless it has none yet or the parent is the supervisor, whose
    children are the Procfile's processes, each named by its command line (else ``inherited``)."""
    if inherited is not None and inherited != "supervise":
        return inherited
    command = _cmdline(pid)
    return next((name for name, pattern in GROUPS if pattern.search(command)), inherited)


class CpuMeter:
    """Snapshots of CPU seconds per group; ``servers`` names process trees by their root pid."""

    def __init__(self, servers: dict[str, int | None], root: int | None = None):
        self.servers = {name: pid for name, pid in servers.items() if pid}
        self.root = root or os.getpid()

    def snapshot(self) -> dict[str, float]:
        busy = machine_busy_seconds()
        stats, children = _process_table()
        usage = defaultdict(float)
        usage[LOAD_GENERATOR] = stats[self.root][1]  # its reaped children are counted in their own groups
        for pid in children[self.root]:
            self._add_tree(pid, None, stats, children, usage)
        for name, pid in self.servers.items():
            if pid in stats:
                self._add_tree(pid, name, stats, children, usage)
        usage[OTHER] = busy - sum(usage.values())
        return dict(usage)

    def _add_tree(self, pid, group, stats, children, usage):
        group = _group_of(pid, group) or OTHER
        usage[group] += stats[pid][1] + stats[pid][2]
        for child in children[pid]:
            self._add_tree(child, group, stats, children, usage)

    def pids(self, wanted: str) -> list[int]:
        """The processes of group ``wanted`` among this process's descendants (for py-spy)."""
        _, children = _process_table()
        found: list[int] = []

        def walk(pid, group):
            group = _group_of(pid, group)
            if group == wanted:
                found.append(pid)
            for child in children[pid]:
                walk(child, group)

        for pid in children[self.root]:
            walk(pid, None)
        return found

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """CPU seconds per group between two snapshots."""
        return {name: after.get(name, 0.0) - before.get(name, 0.0) for name in {**before, **after}}
