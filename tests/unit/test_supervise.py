"""``deploy.supervise``: a process that exits is restarted with a growing pause, the others keep
running, and SIGINT (Ctrl-C) stops every one of them."""

import os
import re
import signal
import subprocess
import sys

import pytest

from config.settings import PROJECT_ROOT
from deploy.supervise import read_procfile
from tests.support.polling import until

DEADLINE = 30


def wait_for(process: subprocess.Popen, log, pattern: str) -> re.Match:
    def logged():
        found = re.search(pattern, log.read_text())
        if not found:
            assert process.poll() is None, log.read_text()
        return found

    return until(logged, lambda: f"{pattern!r} logged:\n{log.read_text()}", DEADLINE, interval=0.05)


@pytest.fixture
def supervised(tmp_path):
    """The supervisor on a Procfile with one process that keeps crashing and one that stays up."""
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "# a comment line\n\ncrashy: sh -c 'echo crashing; exit 3'\nsteady: sleep 600\n",
    )
    log = tmp_path / "supervise.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "deploy.supervise", "--procfile", str(procfile)],
            cwd=PROJECT_ROOT,
            env={**os.environ, "INSTANCE_PATH": str(tmp_path)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    yield process, log
    if process.poll() is None:
        process.terminate()  # the supervisor stops its children; a SIGKILL would orphan them
        process.wait(timeout=DEADLINE)


def test_an_exited_process_is_restarted_with_a_growing_pause_while_the_others_run(supervised):
    process, log = supervised
    steady = int(wait_for(process, log, r"started steady \(pid (\d+)\)").group(1))
    wait_for(process, log, r"crashy \(pid \d+\) exited with code 3; restarting in 1 s")
    wait_for(process, log, r"crashy \(pid \d+\) exited with code 3; restarting in 2 s")
    assert re.search(r"crashy +\| crashing", log.read_text()), "its output is relayed behind its name"
    assert log.read_text().count("started steady") == 1
    os.kill(steady, 0)  # still running
    assert (log.parent / "pids" / "steady.pid").read_text() == f"{steady}\n"


def test_a_killed_process_is_logged_by_its_signal(supervised):
    process, log = supervised
    steady = int(wait_for(process, log, r"started steady \(pid (\d+)\)").group(1))
    os.kill(steady, signal.SIGKILL)
    wait_for(process, log, rf"steady \(pid {steady}\) was killed by SIGKILL; restarting in 1 s")
    wait_for(process, log, r"started steady \(pid (?!{steady})\d+\)".replace("{steady}", str(steady)))


def test_ctrl_c_stops_every_process(supervised):
    process, log = supervised
    steady = int(wait_for(process, log, r"started steady \(pid (\d+)\)").group(1))
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=DEADLINE) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(steady, 0)
    assert log.read_text().rstrip().endswith("stopped")
    assert not list((log.parent / "pids").iterdir()), "no pid file outlives its process"


def test_the_procfile_is_read_in_order_without_comments(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text("# comment\nb: run b --x=1\n\na: run a: with colon\n")
    assert read_procfile(procfile) == {"b": "run b --x=1", "a": "run a: with colon"}
    assert list(read_procfile(PROJECT_ROOT / "Procfile"))[0] == "proxy", "the proxy takes PORT"
