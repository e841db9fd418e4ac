"""What a classifier returns for one image, whatever runtime computed it."""

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Classification:
    label: str
    confidence: float
    top5: list[dict[str, Any]]

    @classmethod
    def from_probabilities(cls, probabilities: np.ndarray, labels: list[str]) -> "Classification":
        """Top-1 label and the five best scores of one softmax row."""
        best = np.argsort(probabilities)[::-1][:5]
        top5 = [{"label": labels[i], "score": float(probabilities[i])} for i in best]
        return cls(label=top5[0]["label"], confidence=top5[0]["score"], top5=top5)
