"""Finding the model files offline, and saying exactly what to do when they are missing."""

import shutil

import pytest

from models.weights import CLASS_INDEX_FILENAME, WEIGHTS_FILENAME, WeightsNotFound, locate_model_files
from tests.conftest import SHARED

SHARED_MODELS = SHARED / "models"


def test_missing_weights_message_names_the_places_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(WeightsNotFound) as raised:
        locate_model_files()
    message = str(raised.value)
    assert str(tmp_path / "keras" / "models" / WEIGHTS_FILENAME) in message
    assert "MODEL_WEIGHTS_PATH" in message and "make weights" in message


def test_weights_in_the_keras_cache_are_used_through_keras(tmp_path, monkeypatch):
    cache = tmp_path / "keras" / "models"
    cache.mkdir(parents=True)
    for name in (WEIGHTS_FILENAME, CLASS_INDEX_FILENAME):
        shutil.copy(SHARED_MODELS / name, cache / name)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    files = locate_model_files()
    assert files.in_keras_cache and files.weights == cache / WEIGHTS_FILENAME


def test_explicit_path_with_class_index_beside_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    files = locate_model_files(str(SHARED_MODELS / WEIGHTS_FILENAME))
    assert not files.in_keras_cache
    labels = files.labels()
    assert len(labels) == 1000
    assert labels[537] == "dogsled" and labels[0] == "tench"
