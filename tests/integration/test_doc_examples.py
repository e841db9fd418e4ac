"""The shell examples of README.md and docs/*.md run as written against a running deployment.

Every fenced ``sh`` block is an example. One whose first line is ``# needs: <what>`` needs more than
the local service (a terminal of its own, MariaDB set up by hand, the checkout's ``.env``, minutes
of benchmark) and is only checked to say so; every other block runs, in the order of its file, with
``bash -e`` in the checkout, against the Procfile under the supervisor with the deployment's
settings in the environment (as ``.env`` gives them). The documented ports (5000, 5555, 5002, 9808)
become the deployment's own.
"""

import re
import subprocess
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT
from deploy.harness import deployment_env, running_procfile

DOCUMENTS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```sh\n(.*?)^```", re.DOTALL | re.MULTILINE)
NEEDS = "# needs: "
BLOCK_TIMEOUT = 600


def examples(document: Path) -> list[tuple[str, str]]:
    """(where, code) of each ``sh`` block: ``where`` is file:line."""
    text = document.read_text()
    return [
        (f"{document.relative_to(PROJECT_ROOT)}:{text[: block.start()].count(chr(10)) + 1}", block.group(1))
        for block in FENCE.finditer(text)
    ]


ALL_EXAMPLES = [example for document in DOCUMENTS for example in examples(document)]
RUNNABLE = [(where, code) for where, code in ALL_EXAMPLES if not code.startswith(NEEDS)]


def test_every_example_either_runs_or_says_what_it_needs():
    assert len(RUNNABLE) >= 15
    for where, code in ALL_EXAMPLES:
        if code.startswith(NEEDS):
            assert len(code.splitlines()[0]) > len(NEEDS) + 3, f"{where}: say what it needs"


def test_documents_name_only_files_that_exist():
    """A path to a sample image in any example is a file of the shared folder."""
    for where, code in ALL_EXAMPLES:
        for path in re.findall(r"\.\./shared/[\w/.-]+", code):
            assert (PROJECT_ROOT / path).exists(), f"{where}: {path} does not exist"


@pytest.fixture(scope="module")
def documented_service(tmp_path_factory, mysql_url, new_queue):
    instance = tmp_path_factory.mktemp("docs-run")
    env = deployment_env(instance, mysql_url, new_queue(), REPUBLISH_PENDING_AFTER="30")
    with running_procfile(env, instance) as (url, supervisor, env):
        yield url, supervisor, env


def localised(code: str, url: str, env: dict) -> str:
    """The example with the documented ports replaced by the deployment's."""
    port = url.rsplit(":", 1)[1]
    replacements = {
        "127.0.0.1:5000": f"127.0.0.1:{port}",
        "127.0.0.1:5555": f"127.0.0.1:{env['FLOWER_PORT']}",
        "127.0.0.1:5002": f"127.0.0.1:{env['WAITER_PORT']}",
        "127.0.0.1:9808": f"127.0.0.1:{env['WORKER_METRICS_PORT']}",
    }
    for documented, actual in replacements.items():
        code = code.replace(documented, actual)
    return code


@pytest.mark.parametrize("where, code", RUNNABLE, ids=[where for where, _ in RUNNABLE])
def test_example_runs(documented_service, where, code):
    url, supervisor, env = documented_service
    result = subprocess.run(
        ["bash", "-e", "-c", localised(code, url, env)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    assert result.returncode == 0, f"{where} failed:\n{code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert (result.stdout + result.stderr).strip(), f"{where} printed nothing:\n{code}"
    assert supervisor.popen.poll() is None
