"""The labelled photos every accuracy and batch test classifies."""

import csv
from pathlib import Path

from tests.conftest import SAMPLES, SHARED_IMAGES


def shared_images() -> list[Path]:
    with open(SHARED_IMAGES / "labels.csv") as labels:
        names = [row["filename"] for row in csv.DictReader(labels)]
    return [SHARED_IMAGES / name for name in names] + sorted(p for p in SAMPLES.iterdir() if p.suffix != ".csv")
