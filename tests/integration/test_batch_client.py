"""``python -m client batch`` against the real deployment, on a few of the shared images."""

import shutil

from tests.conftest import SHARED_IMAGES
from tests.support.batches import run_client

SUBSET = 6


def labelled_subset(folder):
    lines = (SHARED_IMAGES / "labels.csv").read_text().splitlines()
    (folder / "labels.csv").write_text("\n".join(lines[: SUBSET + 1]) + "\n")
    for line in lines[1 : SUBSET + 1]:
        shutil.copy(SHARED_IMAGES / line.split(",")[0], folder)
    return folder


def test_batch_prints_each_post_and_get_answer_and_accuracy(base_url, tmp_path):
    folder = labelled_subset(tmp_path)
    result = run_client(folder, "--url", base_url, "--per-image", "--concurrency", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sum(': POST 202 {"uuid":' in line for line in lines) == SUBSET
    assert sum(": GET 200 {" in line and '"status":"done"' in line for line in lines) == SUBSET
    assert f"{SUBSET}/{SUBSET} classified in" in result.stdout and "images/s" in result.stdout
    # Long polls through the proxy to the waiter: one GET per image, two if a job straddles its wait.
    gets_per_image = float(result.stdout.split("; ")[1].split(" GETs per image")[0])
    assert 1 <= gets_per_image <= 2
    assert "top-1 accuracy: " in result.stdout and f"/{SUBSET} (" in result.stdout
    assert "classifying" in result.stderr  # the tqdm progress bar


def test_batch_summary_is_one_table(base_url, tmp_path):
    folder = labelled_subset(tmp_path)
    result = run_client(folder, "--url", base_url, "--per-image", "--summary")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "POST 202" not in result.stdout
    assert result.stdout.splitlines()[0].split()[:3] == ["image", "status", "result"]
    assert sum(" done " in line for line in result.stdout.splitlines()) == SUBSET
