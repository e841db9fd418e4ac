"""The same MobileNet run by LiteRT (TFLite), converted once from the Keras model.

A LiteRT worker needs ~120 MB and starts in a fraction of a second, where a
TensorFlow one needs ~600 MB and seconds. The conversion imports TensorFlow,
so it runs in a separate process (``python -m models.litert WEIGHTS OUT``),
and its result is cached under a name keyed by the weights' hash.
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from models.classification import Classification
from models.preprocessing import INPUT_SIZE
from models.weights import ModelFiles


def converted_path(files: ModelFiles, cache_dir: Path) -> Path:
    return cache_dir / f"{files.weights.stem}.{files.sha256()}.tflite"


def convert(files: ModelFiles, destination: Path) -> None:
    """Float32 conversion with TensorFlow's own converter; the batch dimension stays dynamic."""
    import tensorflow as tf

    from models.mobilenet import build_keras_model

    # Through a SavedModel: converting a concrete function directly drops Keras 3's
    # variables and yields a model without weights.
    with tempfile.TemporaryDirectory() as saved_model:
        build_keras_model(files).export(saved_model, format="tf_saved_model", verbose=False)
        flatbuffer = tf.lite.TFLiteConverter.from_saved_model(saved_model).convert()
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=destination.parent, delete=False) as tmp:
        tmp.write(flatbuffer)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, destination)  # two workers converting at once both end with a whole file


class LiteRTClassifier:
    """Runs a batch image by image through one interpreter sized for a single image.

    On this CPU, LiteRT's single-thread kernels are no faster per image on larger
    batches, while resizing the interpreter for each new batch size costs 8-80 ms;
    a fixed batch of one avoids that and wastes nothing on padding. Batching still
    pays off around the model: one database write and one ack round per batch.
    """

    def __init__(self, model_path: Path, labels: list[str]):
        from ai_edge_litert.interpreter import Interpreter

        # One thread: the service runs one single-threaded worker process per core.
        self.interpreter = Interpreter(model_path=str(model_path), num_threads=1)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.interpreter.resize_tensor_input(self.input, [1, *INPUT_SIZE, 3])
        self.interpreter.allocate_tensors()
        self.labels = labels

    def classify(self, batch: np.ndarray) -> list[Classification]:
        """Classify a (N, 224, 224, 3) batch of preprocessed images."""
        results = []
        for image in np.asarray(batch, dtype=np.float32):
            self.interpreter.set_tensor(self.input, image[None])
            self.interpreter.invoke()
            results.append(Classification.from_probabilities(self.interpreter.get_tensor(self.output)[0], self.labels))
        return results


if __name__ == "__main__":
    from models.weights import locate_model_files

    weights_path, destination = sys.argv[1], Path(sys.argv[2])
    convert(locate_model_files(weights_path), destination)
