"""Watching the model read: its answer after each row, and the cell's equations, against
Keras itself; and the committed run's table against its test accuracy."""

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from rowlstm.errors import UserError
from rowlstm.explain_outputs import first_of_each_class, per_row
from rowlstm.model import build_model, save_model
from rowlstm.paths import ExplainPaths
from rowlstm.row_by_row import cell_signals, first_recurrent, stepwise
from rowlstm.split_files import save_split
from stages.explain import run as explain
from tests.helpers import ROOT, evaluate_into, synthetic_digits, tiny_params, tiny_train

RNG = np.random.default_rng(7)


def with_random_weights(model: keras.Model) -> keras.Model:
    """Nonzero biases too, so that a wrong bias layout cannot pass unnoticed."""
    for layer in model.layers:
        layer.set_weights([w + RNG.normal(0, 0.3, w.shape) for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_the_cell_equations_give_keras_own_h_and_c(cell: str) -> None:
    model = with_random_weights(build_model(tiny_train(cell=cell, units=8), steps_per_epoch=1))
    layer = first_recurrent(model)
    rows = RNG.random((28, 28)).astype(np.float32)
    config = {**layer.get_config(), "return_sequences": True, "return_state": True}
    keras_own = type(layer).from_config(config)
    keras_own(rows[None])
    keras_own.set_weights(layer.get_weights())
    outputs = [np.asarray(o)[0] for o in keras_own(rows[None])]
    signals = cell_signals(layer, rows)
    np.testing.assert_allclose(signals["h"], outputs[0], atol=1e-5)  # h after every row
    if cell == "lstm":  # Keras returns (sequence, h, c): c after the last row
        np.testing.assert_allclose(signals["c"][-1], outputs[2], atol=1e-5)
    gates = {"lstm": {"input gate", "forget gate", "output gate"}}
    gates["gru"] = {"update gate", "reset gate"}
    expected = gates.get(cell, set()) | {"h"} | ({"c"} if cell == "lstm" else set())
    assert set(signals) == expected
    assert all(values.shape == (28, 8) for values in signals.values())


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_a_batch_s_signals_are_each_image_s_own(cell: str) -> None:
    layer = first_recurrent(
        with_random_weights(build_model(tiny_train(cell=cell, units=8), steps_per_epoch=1))
    )
    images = RNG.random((3, 28, 28)).astype(np.float32)
    batch = cell_signals(layer, images)
    for index, image in enumerate(images):
        for name, values in cell_signals(layer, image).items():
            assert batch[name].shape == (3, 28, 8)
            np.testing.assert_allclose(batch[name][index], values, atol=1e-6)


def test_stepwise_answers_after_every_row_and_the_last_is_the_model_s() -> None:
    model = with_random_weights(build_model(tiny_train(units=8, layers=2), steps_per_epoch=1))
    images = RNG.random((5, 28, 28)).astype(np.float32)
    answers = stepwise(model).predict(images, verbose=0)
    assert answers.shape == (5, 28, 10)
    np.testing.assert_allclose(answers.sum(axis=2), 1, atol=1e-5)
    np.testing.assert_allclose(answers[:, -1], model.predict(images, verbose=0), atol=1e-6)
    assert not np.allclose(answers[:, 0], answers[:, -1])  # it does change its mind


def test_a_bidirectional_model_has_no_answer_after_row_k() -> None:
    model = build_model(tiny_train(units=4, bidirectional=True), steps_per_epoch=1)
    with pytest.raises(UserError, match="read every row at every step"):
        stepwise(model)


def test_per_row_scores_each_row_as_evaluate_scores_the_last() -> None:
    actual = np.array([0, 1, 2, 1])
    answers = np.zeros((4, 3, 10))
    answers[:, 0, 1] = 1  # after row 1: "1" for all, right for 2 of 4
    answers[np.arange(4), 1, actual] = 0.6  # after row 2: all right, at 0.6
    answers[np.arange(4), 2, [0, 1, 2, 3]] = 0.9  # after row 3: the last one wrong
    table = per_row(answers, actual)
    assert table["rows_read"].tolist() == [1, 2, 3]
    assert table["accuracy"].tolist() == [0.5, 1.0, 0.75]
    assert table["true_probability"].tolist() == [0.5, 0.6, 0.675]
    assert first_of_each_class(np.array([3, 0, 1, 0, 2, 4, 5, 6, 7, 8, 9, 1])) == [
        1, 2, 4, 0, 5, 6, 7, 8, 9, 10
    ]  # fmt: skip


def test_the_committed_run_reads_to_its_own_test_accuracy() -> None:
    rows = pd.read_csv(ROOT / "reports/rows.csv")
    accuracy = json.loads((ROOT / "reports/metrics.json").read_text())["test"]["accuracy"]
    assert rows["rows_read"].tolist() == list(range(1, 29))
    assert rows["accuracy"].iloc[-1] == accuracy
    assert rows["accuracy"].iloc[0] < 0.5 < rows["accuracy"].iloc[-1]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_stage_reads_to_evaluate_s_accuracy_or_says_why_not(
    tmp_path: Path, bidirectional: bool
) -> None:
    """An untrained model on 60 synthetic digits: the last row is evaluate's accuracy, to
    the digit; a bidirectional model gets a table without rows and still a picture."""
    params = tiny_train(units=8, bidirectional=bidirectional)
    save_model(with_random_weights(build_model(params, steps_per_epoch=1)), tmp_path / "m.keras")
    images, labels = synthetic_digits(60, seed=5)
    save_split(tmp_path / "test", images.astype(np.float32) / 255, labels)
    paths = ExplainPaths(
        model=tmp_path / "m.keras",
        test=tmp_path / "test",
        rows=tmp_path / "rows.csv",
        picture=tmp_path / "reading.png",
    )
    table = explain(tiny_params().explain, paths)
    assert (tmp_path / "reading.png").read_bytes()[:4] == b"\x89PNG"
    if bidirectional:
        assert table.empty and (tmp_path / "rows.csv").read_text() == (
            "rows_read,accuracy,true_probability\n"
        )
        return
    metrics = evaluate_into(
        tiny_params().evaluate, tmp_path / "m.keras", tmp_path / "test", tmp_path
    )
    assert table["accuracy"].iloc[-1] == metrics["test"]["accuracy"]
