"""The worker's classifier: checked and prepared before the pool starts, loaded once per child.

TensorFlow is not fork-safe, so the parent never imports it: it checks that the
weights exist and has a subprocess convert them for LiteRT if needed; each pool
process then builds its own classifier (``tasks/lifecycle.py`` calls these in order).
"""

import logging

from config.settings import Settings
from models import runtime
from models.weights import WeightsNotFound, locate_model_files
from tasks.state import WorkerState

logger = logging.getLogger(__name__)


def _model_config(settings: Settings):
    return locate_model_files(settings.MODEL_WEIGHTS_PATH), settings.MODEL_RUNTIME, settings.MODEL_CACHE_DIR


def prepare_model_or_refuse_to_start(state: WorkerState, settings: Settings) -> None:
    try:
        files, runtime_name, cache_dir = _model_config(settings)
        runtime.prepare(files, runtime_name, cache_dir)
    except (WeightsNotFound, ValueError) as error:
        logger.critical("%s", error)
        raise SystemExit(f"worker not started: {error}") from None
    state.model_provenance = runtime.provenance(files, runtime_name, cache_dir)
    logger.info("model: %s weights %s (%s)", runtime_name, files.weights, state.model_provenance)


def load_classifier(state: WorkerState, settings: Settings):
    """The process's classifier, built the first time it is asked for."""
    if state.classifier is None:
        state.classifier = runtime.load(*_model_config(settings))
    return state.classifier
