"""Where Gunicorn's CPU goes under a flood: py-spy samples each Gunicorn worker while a load runs.

``py-spy record --gil --format raw`` samples only the thread holding the GIL, so a sample is
Python running on a core, not a thread waiting on MariaDB or RabbitMQ, and writes collapsed stacks
(``frame;frame;... count``) that flamegraph.pl or speedscope draw. ``summarize`` ranks frames by
own samples (the stack's last frame) and by their package, and the project's own functions by
inclusive samples.
"""

import os
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from config.settings import PROJECT_ROOT

PY_SPY = Path(sys.executable).parent / "py-spy"
# A frame's package: "(sqlalchemy/sql/base.py)" → sqlalchemy, "(<frozen os>)" → os,
# "(<sqlalchemy generated …>)" → sqlalchemy, "(<string>)" → string.
PACKAGE = re.compile(r"\(<?(?:frozen )?(\w+)")
PROJECT_FILE = re.compile(r"\((?:webapp|jobs|config)/[^)]*\)$|\(wsgi\.py[:)]")  # py-spy names them from the root


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Gunicorn's master: its workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
            except FileNotFoundError:
                continue
    return found


def record(pids: list[int], seconds: int, out_dir: Path, label: str, load) -> list[Path]:
    """Samples each of ``pids`` for ``seconds`` while ``load(stop)`` runs in a thread until ``stop`` is set."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    driver = threading.Thread(target=load, args=(stop,))
    driver.start()
    outputs, spies = [], []
    try:
        for pid in pids:
            outputs.append(out_dir / f"{label}-{pid}.txt")
            spies.append(
                subprocess.Popen(
                    [
                        str(PY_SPY),
                        "record",
                        "--pid",
                        str(pid),
                        "--duration",
                        str(seconds),
                        "--rate",
                        "250",
                        "--gil",
                        "--format",
                        "raw",
                        "--output",
                        str(outputs[-1]),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
        for spy in spies:
            _, error = spy.communicate(timeout=seconds + 60)
            if spy.returncode:
                raise RuntimeError(f"py-spy failed: {error.decode(errors='replace')[-2000:]}")
    finally:
        stop.set()
        driver.join()
    return outputs


def summarize(files: list[Path], top: int = 12) -> tuple[int, list, list, list]:
    """(samples, frames by own samples, own samples by package, the project's frames by inclusive samples),
    line numbers dropped."""
    own, packages, inclusive, total = Counter(), Counter(), Counter(), 0
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
            samples = int(count)
            total += samples
            own[frames[-1]] += samples
            packages[PACKAGE.search(frames[-1]).group(1)] += samples
            for frame in set(frames):
                if PROJECT_FILE.search(frame):
                    inclusive[frame] += samples
    return total, own.most_common(top), packages.most_common(top), inclusive.most_common(top)


def relative(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)
