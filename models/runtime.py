"""Choosing how the network runs: LiteRT (default, measured fastest) or plain Keras.

``prepare`` runs once in the worker's parent before the pool forks and never
imports TensorFlow there; ``load`` runs in each pool process.
"""

import subprocess
import sys
from pathlib import Path

from config.settings import PROJECT_ROOT
from models.litert import LiteRTClassifier, converted_path
from models.mobilenet import KerasClassifier
from models.weights import ModelFiles, short_sha256

RUNTIMES = ("litert", "keras")
MODEL_NAME = "mobilenet_v1_0.75_224"


def prepare(files: ModelFiles, runtime: str, cache_dir: Path) -> None:
    """Check the runtime name and make sure a LiteRT model has been converted (in a subprocess)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"MODEL_RUNTIME={runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime == "litert" and not converted_path(files, cache_dir).is_file():
        weights = "" if files.in_keras_cache else str(files.weights)
        subprocess.run(
            [sys.executable, "-m", "models.litert", weights, str(converted_path(files, cache_dir))],
            check=True,
            cwd=PROJECT_ROOT,
        )


def load(files: ModelFiles, runtime: str, cache_dir: Path):
    if runtime == "keras":
        return KerasClassifier(files)
    return LiteRTClassifier(converted_path(files, cache_dir), files.labels())


def provenance(files: ModelFiles, runtime: str, cache_dir: Path) -> dict:
    """The provenance a result records: which network, run how, from which files (after ``prepare``)."""
    converted = short_sha256(converted_path(files, cache_dir)) if runtime == "litert" else None
    return {
        "model_name": MODEL_NAME,
        "model_runtime": runtime,
        "weights_sha256": files.sha256(),
        "converted_sha256": converted,
    }
