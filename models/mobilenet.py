"""MobileNet v1 (alpha 0.75) with ImageNet weights, run through Keras.

TensorFlow is imported here only, and only when a classifier is built, so the
web process and the worker's parent never load it.
"""
from dataclasses import dataclass

import numpy as np

from models.weights import ModelFiles


@dataclass(frozen=True)
class Classification:
    label: str
    confidence: float
    top5: list[dict]


class MobileNetClassifier:
    def __init__(self, files: ModelFiles):
        from keras.applications import mobilenet

        # "imagenet" makes Keras find the file in its own cache, as it would after a download.
        weights = "imagenet" if files.in_keras_cache else str(files.weights)
        self.model = mobilenet.MobileNet(alpha=0.75, weights=weights)
        self.labels = files.labels()

    def classify(self, batch: np.ndarray) -> list[Classification]:
        """Classify a (N, 224, 224, 3) batch of preprocessed images."""
        probabilities = np.asarray(self.model(batch, training=False))
        return [self._describe(row) for row in probabilities]

    def _describe(self, probabilities: np.ndarray) -> Classification:
        best = np.argsort(probabilities)[::-1][:5]
        top5 = [{"label": self.labels[i], "score": float(probabilities[i])} for i in best]
        return Classification(label=top5[0]["label"], confidence=top5[0]["score"], top5=top5)
