"""The worker's classifier: checked before the pool starts, loaded once per child after fork.

TensorFlow is not fork-safe, so the parent only checks that the files exist;
each pool process builds its own model when it starts.
"""
import logging

from celery import current_app
from celery.signals import worker_init, worker_process_init

from models.mobilenet import MobileNetClassifier
from models.weights import WeightsNotFound, locate_model_files

logger = logging.getLogger(__name__)
_classifier: MobileNetClassifier | None = None


def _weights_setting() -> str:
    return current_app.flask_app.config["MODEL_WEIGHTS_PATH"]


def get_classifier() -> MobileNetClassifier:
    global _classifier
    if _classifier is None:
        _classifier = MobileNetClassifier(locate_model_files(_weights_setting()))
    return _classifier


@worker_init.connect
def refuse_to_start_without_weights(**_):
    try:
        files = locate_model_files(_weights_setting())
    except WeightsNotFound as error:
        logger.critical("%s", error)
        raise SystemExit(f"worker not started: {error}") from None
    logger.info("model weights: %s", files.weights)


@worker_process_init.connect
def load_model_in_child(**_):
    get_classifier()
