"""The worker's classifier: checked and prepared before the pool starts, loaded once per child.

TensorFlow is not fork-safe, so the parent never imports it: it checks that the
weights exist and has a subprocess convert them for LiteRT if needed; each pool
process then builds its own classifier.
"""

import logging
import os

from celery import current_app
from celery.signals import worker_init, worker_process_init

from models import runtime
from models.weights import WeightsNotFound, locate_model_files

logger = logging.getLogger(__name__)
_classifier = None
_description: dict = {}  # set in the parent at start, inherited by every pool process


def _model_config():
    settings = current_app.flask_app.extensions["settings"]
    return locate_model_files(settings.MODEL_WEIGHTS_PATH), settings.MODEL_RUNTIME, settings.MODEL_CACHE_DIR


def model_description() -> dict:
    """What this worker's results record as their provenance (models.runtime.describe)."""
    return _description


def get_classifier():
    global _classifier
    if _classifier is None:
        _classifier = runtime.load(*_model_config())
    return _classifier


def model_identity() -> dict:
    """What this worker serves, for its metrics' labels: the runtime and the weights' hash."""
    return {"runtime": _description["model_runtime"], "weights_sha256": _description["weights_sha256"]}


@worker_init.connect
def yield_cpu_to_the_web(**_):
    """On a shared host, answering POSTs promptly matters more than the next batch: the pool
    processes inherit a lower priority and still use every spare cycle."""
    os.nice(current_app.flask_app.extensions["settings"].WORKER_NICENESS)


@worker_init.connect
def prepare_model_or_refuse_to_start(**_):
    try:
        files, runtime_name, cache_dir = _model_config()
        runtime.prepare(files, runtime_name, cache_dir)
    except (WeightsNotFound, ValueError) as error:
        logger.critical("%s", error)
        raise SystemExit(f"worker not started: {error}") from None
    _description.update(runtime.describe(files, runtime_name, cache_dir))
    logger.info("model: %s weights %s (%s)", runtime_name, files.weights, _description)


@worker_process_init.connect
def load_model_in_child(**_):
    get_classifier()
