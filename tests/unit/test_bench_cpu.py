"""The benchmark's CPU accounting (bench/cpu.py) and profile summary (bench/profile_web.py), on real processes."""

import subprocess
import sys
import textwrap

from bench.cpu import LOAD_GENERATOR, CpuMeter
from bench.profile_web import summarize

# Burns 0.3 s of CPU in a child process, reaps it, then waits for its stdin to close.
PARENT = textwrap.dedent("""
    import subprocess, sys
    subprocess.run([sys.executable, "-c",
                    "import time\\nend = time.process_time() + 0.3\\nwhile time.process_time() < end: pass"])
    print("reaped", flush=True)
    sys.stdin.read()
""")


def test_a_group_keeps_the_cpu_of_children_that_exited():
    meter = CpuMeter({})
    before = meter.snapshot()
    # "gunicorn" among its arguments puts the process, and the child it ran, in the Gunicorn group.
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, "gunicorn"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout.readline() == "reaped\n"
        spent = meter.spent(before, meter.snapshot())
    finally:
        parent.stdin.close()
        parent.wait(timeout=10)
    assert spent["Gunicorn"] >= 0.28
    assert spent[LOAD_GENERATOR] < spent["Gunicorn"]


def test_profile_summary_ranks_frames_packages_and_project_frames(tmp_path):
    raw = tmp_path / "web.txt"
    raw.write_text(
        "handle (gunicorn/w.py:1);get_prediction (webapp/predictions/views.py:60);ping (db.py:9) 6\n"
        "handle (gunicorn/w.py:1);get_prediction (webapp/predictions/views.py:61) 3\n"
        "handle (gunicorn/w.py:2);write (gunicorn/util.py:5) 1\n"
    )
    total, own, packages, inclusive = summarize([raw])
    assert total == 10
    assert own == [
        ("ping (db.py)", 6),
        ("get_prediction (webapp/predictions/views.py)", 3),
        ("write (gunicorn/util.py)", 1),
    ]
    assert packages == [("db", 6), ("webapp", 3), ("gunicorn", 1)]
    assert inclusive == [("get_prediction (webapp/predictions/views.py)", 9)]
