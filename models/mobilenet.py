"""MobileNet v1 (alpha 0.75) with ImageNet weights, run through Keras: the source of truth.

TensorFlow is imported only when a model is built (here, or by the LiteRT
conversion in ``models/litert.py``, which runs in a subprocess), so the web
process and the worker's parent never load it.
"""

import numpy as np

from models.classification import Classification
from models.weights import ModelFiles


def build_keras_model(files: ModelFiles):
    from keras.applications import mobilenet

    # "imagenet" makes Keras find the file in its own cache, as it would after a download.
    weights = "imagenet" if files.in_keras_cache else str(files.weights)
    return mobilenet.MobileNet(alpha=0.75, weights=weights)


class KerasClassifier:
    def __init__(self, files: ModelFiles):
        self.model = build_keras_model(files)
        self.labels = files.labels()

    def classify(self, batch: np.ndarray) -> list[Classification]:
        """Classify a (N, 224, 224, 3) batch of preprocessed images."""
        probabilities = np.asarray(self.model(batch, training=False))
        return [Classification.from_probabilities(row, self.labels) for row in probabilities]
