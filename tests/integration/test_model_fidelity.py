"""The LiteRT model served by default is faithful to Keras, the source of truth."""

import numpy as np

from models.litert import LiteRTClassifier, convert, converted_path
from models.mobilenet import KerasClassifier
from models.preprocessing import prepare
from models.weights import locate_model_files
from tests.support.photos import shared_images


def test_litert_matches_keras_top1_on_every_shared_image(tmp_path):
    files = locate_model_files()
    model_path = converted_path(files, tmp_path)
    assert model_path.name.startswith("mobilenet_7_5_224_tf.c80c6d56bf40cd8f"), "keyed by the weights' hash"
    convert(files, model_path)

    paths = shared_images()
    batch = np.stack([prepare(path.read_bytes()) for path in paths])
    keras = KerasClassifier(files)
    litert = LiteRTClassifier(model_path, files.labels())

    keras_probabilities = np.asarray(keras.model(batch, training=False))
    litert_results = []
    for start in range(0, len(batch), 32):  # the worker's batch size; the last batch is smaller
        litert_results += litert.classify(batch[start : start + 32])

    keras_top1 = [keras.labels[i] for i in keras_probabilities.argmax(axis=1)]
    assert [result.label for result in litert_results] == keras_top1
    largest_difference = max(
        abs(entry["score"] - keras_probabilities[row, keras.labels.index(entry["label"])])
        for row, result in enumerate(litert_results)
        for entry in result.top5
    )
    print(f"largest absolute probability difference LiteRT vs Keras (top-5 entries): {largest_difference:.2e}")
    assert largest_difference < 1e-4
