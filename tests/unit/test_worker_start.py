"""A worker without weights stops at once and says where it looked, instead of failing per task."""

import os
import subprocess
import sys

from config.settings import PROJECT_ROOT


def test_worker_without_weights_exits_with_a_clear_message(tmp_path):
    env = {
        **os.environ,
        "KERAS_HOME": str(tmp_path / "keras"),
        "MODEL_WEIGHTS_PATH": "",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "CELERY_BROKER_URL": "embedded://",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
    }
    finished = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks.worker:celery_app", "worker", "--concurrency", "1"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    output = finished.stdout + finished.stderr
    assert "worker not started" in output
    assert str(tmp_path / "keras" / "models" / "mobilenet_7_5_224_tf.h5") in output
    assert "MODEL_WEIGHTS_PATH" in output
