"""Finding the ImageNet weights and class index without touching the network.

Keras keeps downloaded files in ``$KERAS_HOME/models`` (default ``~/.keras``).
The worker looks there, or at ``MODEL_WEIGHTS_PATH``, and refuses to start
when neither has the file, instead of trying a download that cannot work offline.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

WEIGHTS_FILENAME = "mobilenet_7_5_224_tf.h5"
CLASS_INDEX_FILENAME = "imagenet_class_index.json"


class WeightsNotFound(RuntimeError):
    """The model files are missing; the message says where we looked and what to do."""


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def short_sha256(path: Path) -> str:
    """The first 16 hex digits of the file's sha256: enough to tell model files apart."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class ModelFiles:
    weights: Path
    class_index: Path
    in_keras_cache: bool

    def sha256(self) -> str:
        """The weights' hash, shortened: names the converted model and tells deployed workers apart."""
        return short_sha256(self.weights)

    def labels(self) -> list[str]:
        """Keras class names (``dogsled``), ordered by class index."""
        index = json.loads(self.class_index.read_text())
        return [index[str(i)][1] for i in range(len(index))]


def locate_model_files(weights_path: str = "") -> ModelFiles:
    """Return the weights and class index, or raise WeightsNotFound saying how to provide them."""
    cache = keras_cache_dir()
    weights = Path(weights_path).expanduser() if weights_path else cache / WEIGHTS_FILENAME
    candidates = [weights.parent / CLASS_INDEX_FILENAME, cache / CLASS_INDEX_FILENAME]
    class_index = next((p for p in candidates if p.is_file()), None)
    if weights.is_file() and class_index is not None:
        return ModelFiles(weights.resolve(), class_index.resolve(), in_keras_cache=not weights_path)
    missing = [] if weights.is_file() else [f"weights {weights}"]
    if class_index is None:
        missing.append("class index " + " or ".join(str(p) for p in candidates))
    raise WeightsNotFound(
        "MobileNet model files not found: looked for " + "; ".join(missing) + ". "
        f"Copy {WEIGHTS_FILENAME} and {CLASS_INDEX_FILENAME} into the Keras cache {cache} "
        "(`make weights` does this from ../shared/models), or set MODEL_WEIGHTS_PATH to the "
        ".h5 file with the class index beside it."
    )
