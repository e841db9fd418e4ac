"""The seed-style baseline for bench/throughput.py: one task per image, ``model.predict`` on a batch of 1.

It consumes the same messages from the same queue and writes the same rows as
the real worker, so the only difference measured is how the worker classifies.

    celery -A bench.naive_worker:celery_app worker --concurrency 2
"""

from celery.signals import worker_process_init

from config.settings import load_settings
from jobs.app import create_base_app
from jobs.broker import CLASSIFY_TASK
from jobs.records import done_outcome, record_outcomes
from models.classification import Classification
from models.mobilenet import build_keras_model
from models.preprocessing import prepare
from models.weights import locate_model_files

flask_app = create_base_app(__name__, load_settings())
celery_app = flask_app.extensions["celery"]
celery_app.conf.update(worker_prefetch_multiplier=1)
files = locate_model_files()
_model = None


@worker_process_init.connect
def load_model(**_):
    global _model
    _model = build_keras_model(files)


@celery_app.task(name=CLASSIFY_TASK)
def classify_image(prediction_uuid: str, image_url: str) -> None:
    image = prepare(flask_app.extensions["image_store"].read(image_url))
    result = Classification.from_probabilities(_model.predict(image[None], verbose=0)[0], files.labels())
    record_outcomes({prediction_uuid: done_outcome(result.label, result.confidence, result.top5)})
