"""The seed-style baseline for bench/throughput.py: one task per image, ``model.predict`` on a batch of 1.

It consumes the same messages from the same queue and writes the same rows as
the real worker, so the only difference measured is how the worker classifies.

    celery -A bench.naive_worker:celery_app worker --concurrency 2
"""
from celery.signals import worker_process_init

from models.classification import describe
from models.mobilenet import build_keras_model
from models.preprocessing import prepare
from models.weights import locate_model_files
from webapp import create_app
from webapp.predictions.models import done_outcome, record_outcomes

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
celery_app.conf.update(imports=(), worker_prefetch_multiplier=1)
celery_app.tasks.pop("classify_image")  # the batched task; replaced below
files = locate_model_files()
_model = None


@worker_process_init.connect
def load_model(**_):
    global _model
    _model = build_keras_model(files)


@celery_app.task(name="classify_image")
def classify_image(prediction_uuid: str, image_url: str, attempt: int = 0) -> None:
    image = prepare(flask_app.extensions["image_store"].read(image_url))
    result = describe(_model.predict(image[None], verbose=0)[0], files.labels())
    record_outcomes({prediction_uuid: done_outcome(result.label, result.confidence, result.top5)})
