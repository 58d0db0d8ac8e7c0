"""Safety: nothing is unpickled, YAML is read safely, models load in Keras' safe mode."""

import ast
from pathlib import Path

import keras
import numpy as np
import pytest

from rowlstm.errors import UserError
from rowlstm.model import load_classifier, save_model
from rowlstm.split_files import load_split
from tests.helpers import PACKAGES, ROOT

CODE = sorted(path for package in PACKAGES for path in ROOT.glob(f"{package}/*.py"))


def calls(name: str) -> list[ast.Call]:
    """Every call in our code whose function is spelled ...name (e.g. `np.load`)."""
    found = []
    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(name):
                found.append(node)
    return found


def keyword(call: ast.Call, name: str) -> object:
    return next((ast.literal_eval(k.value) for k in call.keywords if k.arg == name), None)


def test_no_pickle_and_no_unsafe_yaml_in_the_code() -> None:
    for path in CODE:
        tree = ast.parse(path.read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert not imported & {"pickle", "cPickle", "dill", "joblib", "shelve"}, path
    assert calls("yaml.safe_load")
    assert not calls("yaml.load") and not calls("yaml.unsafe_load")


def test_every_numpy_load_refuses_pickles_and_every_model_load_is_safe() -> None:
    loads = calls("np.load")
    assert loads and all(keyword(call, "allow_pickle") is False for call in loads)
    models = calls("load_model")
    assert models and all(keyword(call, "safe_mode") is True for call in models)


def test_a_pickled_array_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.array([{"payload": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "y.npy", np.zeros(1, dtype=np.uint8))
    with pytest.raises(UserError, match=r"x\.npy: cannot load \(Object arrays cannot be loaded"):
        load_split(tmp_path)


def test_a_split_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 28, 27), dtype=np.float32))
    np.save(tmp_path / "y.npy", np.zeros(2, dtype=np.uint8))
    with pytest.raises(UserError, match=r"expected float32 N x 28 x 28, got float32 \(2, 28, 27\)"):
        load_split(tmp_path)


def test_a_model_carrying_code_or_garbage_is_refused_in_one_line(tmp_path: Path) -> None:
    inputs = keras.Input((28, 28))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    with pytest.raises(UserError, match=r"lambda\.keras: not a loadable Keras model \(.*safe_mode"):
        load_classifier(tmp_path / "lambda.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(UserError, match=r"junk\.keras: damaged, not a whole \.keras") as caught:
        load_classifier(tmp_path / "junk.keras")
    assert "\n" not in str(caught.value)


def test_a_truncated_or_corrupted_model_is_named_as_such(tmp_path: Path) -> None:
    """Keras itself says "File not found" of a truncated archive."""
    inputs = keras.Input((28, 28))
    path = tmp_path / "whole.keras"
    save_model(keras.Model(inputs, keras.layers.Dense(2)(inputs)), path)
    data = path.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"cut\.keras: damaged, not a whole \.keras \(zip\)"):
        load_classifier(tmp_path / "cut.keras")
    weights = data.index(b"model.weights.h5") + 200  # inside the first entry's data
    flipped = data[:weights] + bytes([data[weights] ^ 0xFF]) + data[weights + 1 :]
    (tmp_path / "flipped.keras").write_bytes(flipped)
    with pytest.raises(UserError, match=r"flipped\.keras: damaged, \S+ inside it fails"):
        load_classifier(tmp_path / "flipped.keras")
