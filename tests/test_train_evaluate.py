import dataclasses
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from rowlstm.errors import UserError
from rowlstm.evaluate_outputs import draw_gallery, per_class, worst_errors
from rowlstm.split_files import load_split, save_split
from rowlstm.train_checkpoint import Checkpoint
from rowlstm.train_loop import epoch_images, warped
from tests.helpers import evaluate_into, tiny_params, tiny_train, train_into, train_paths

ACCURACY_LOG = "plots/metrics/eval/accuracy.tsv"  # DVCLive's, under the stage's logs


def train_tiny(root: Path, name: str) -> dict:
    return train_into(tiny_train(), root, name)


@pytest.fixture(scope="module")
def reference(prepared: Path) -> dict:
    """The tiny training once, for the tests that compare with it (training is
    deterministic): its metrics; its outputs are in prepared/reference."""
    return train_tiny(prepared, "reference")


def test_training_learns_logs_and_is_deterministic(prepared, reference) -> None:
    first = reference
    second = train_tiny(prepared, "b")
    assert first == second
    assert max(first["val_accuracy"]) >= 0.9
    model = train_paths(prepared, "reference").model.read_bytes()
    assert model == train_paths(prepared, "b").model.read_bytes()
    logged = pd.read_csv(train_paths(prepared, "reference").logs / ACCURACY_LOG, sep="\t")
    assert logged["step"].tolist() == list(range(1, len(first["val_accuracy"]) + 1))  # epochs
    np.testing.assert_allclose(logged["accuracy"], first["val_accuracy"], rtol=1e-6)


def test_early_stopping_restores_the_best_validation_epoch(prepared) -> None:
    params = tiny_train(units=8, epochs=30, patience=1, learning_rate=0.5, optimizer="sgd")
    history = train_into(params, prepared, "es")
    assert len(history["val_accuracy"]) < 30
    model = keras.saving.load_model(train_paths(prepared, "es").model)
    x, y = load_split(prepared / "data/prepared/val")
    accuracy = (model.predict(x, verbose=0).argmax(1) == y).mean()
    assert accuracy == pytest.approx(max(history["val_accuracy"]), abs=1e-6)


def test_a_moving_average_is_what_validation_scores_and_the_stage_keeps(prepared) -> None:
    history = train_into(tiny_train(**AVERAGED, epochs=3), prepared, "averaged")
    saved = keras.saving.load_model(train_paths(prepared, "averaged").model)
    x, y = load_split(prepared / "data/prepared/val")
    accuracy = (saved.predict(x, verbose=0).argmax(1) == y).mean()
    assert accuracy == pytest.approx(max(history["val_accuracy"]), abs=1e-6)
    averages = saved.optimizer._model_variables_moving_average
    for weight, average in zip(saved.trainable_variables, averages, strict=True):
        np.testing.assert_array_equal(weight.numpy(), average.numpy())
    # Smoothing holds the training loss above a plain run's: the targets are never 0 or 1.
    plain = train_into(tiny_train(epochs=3), prepared, "not-averaged")
    assert min(history["loss"]) > min(plain["loss"])


def test_evaluate_writes_metrics_table_and_confusion_rows(prepared) -> None:
    train_tiny(prepared, "e")
    out = prepared / "evaluated"  # its reports go into out/reports, as in the pipeline
    params = dataclasses.replace(tiny_params().evaluate, batch_size=64)
    metrics = evaluate_into(
        params, train_paths(prepared, "e").model, prepared / "data/prepared/test", out
    )
    assert (out / "reports/errors.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((out / "reports/metrics.json").read_text()) == metrics
    test = metrics["test"]
    assert set(test) == {"accuracy", "loss", "macro_f1", "errors"}
    rows = pd.read_csv(out / "reports/predictions.csv")
    assert len(rows) == 200 and list(rows.columns) == ["actual", "predicted"]
    assert test["errors"] == int((rows.actual != rows.predicted).sum())
    assert test["accuracy"] == pytest.approx(1 - test["errors"] / 200)
    assert test["accuracy"] >= 0.9
    model = keras.saving.load_model(train_paths(prepared, "e").model)
    x, y = load_split(prepared / "data/prepared/test")
    expected_loss = keras.losses.sparse_categorical_crossentropy(y, model.predict(x, verbose=0))
    assert test["loss"] == pytest.approx(float(np.mean(expected_loss)), abs=1e-5)
    table = pd.read_csv(out / "reports/classes.csv")
    assert table["support"].sum() == 200
    assert table["errors"].sum() == test["errors"]
    assert test["macro_f1"] == pytest.approx(table["f1"].mean(), abs=1e-6)


def test_per_class_scores_on_a_hand_checked_example() -> None:
    actual = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    table = per_class(actual, predicted).set_index("digit")
    assert table.loc[0, "precision"] == 0.5 and table.loc[0, "recall"] == 0.5
    assert table.loc[1, "precision"] == pytest.approx(2 / 3) and table.loc[1, "recall"] == 1.0
    assert table.loc[1, "f1"] == pytest.approx(0.8)
    assert table.loc[2, "precision"] == 1.0 and table.loc[2, "recall"] == 0.5
    assert table.loc[5].tolist() == [0, 0, 0.0, 0.0, 0.0]
    assert table["errors"].tolist()[:3] == [1, 0, 1]


# The weights' moving average and label smoothing: validated, saved and resumed like the rest.
AVERAGED = {"ema_momentum": 0.9, "label_smoothing": 0.1}


@pytest.mark.parametrize("changes", [{}, AVERAGED], ids=["plain", "averaged"])
def test_an_interrupted_training_resumes_to_the_same_weights(
    prepared, reference, monkeypatch, changes
) -> None:
    name = "cut-" + "-".join(changes)
    if changes:
        reference = train_into(tiny_train(**changes), prepared, "whole-averaged")
    whole = train_paths(prepared, "whole-averaged" if changes else "reference")
    saves = []
    original = Checkpoint.save

    def save_then_die(self, model, progress) -> None:
        original(self, model, progress)
        saves.append(len(progress.history))
        if len(saves) == 3:
            raise KeyboardInterrupt  # killed right after epoch 3 was checkpointed

    monkeypatch.setattr(Checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_into(tiny_train(**changes), prepared, name)
    cut = train_paths(prepared, name)
    assert not cut.model.exists()
    live = pd.read_csv(cut.logs / ACCURACY_LOG, sep="\t")
    assert live["step"].tolist() == [1, 2]  # logged as it trained; killed before logging 3
    assert (cut.checkpoint / "state.json").exists()
    monkeypatch.setattr(Checkpoint, "save", original)
    resumed = train_into(tiny_train(**changes), prepared, name)
    assert cut.model.read_bytes() == whole.model.read_bytes()
    for log in (ACCURACY_LOG, "plots/metrics/train/loss.tsv"):
        assert (cut.logs / log).read_text() == (whole.logs / log).read_text()
    assert resumed == reference
    assert not cut.checkpoint.exists()  # removed once the model is saved


def test_a_checkpoint_of_other_params_is_discarded(prepared, reference) -> None:
    ck = train_paths(prepared, "p2").checkpoint
    ck.mkdir(parents=True)
    (ck / "state.json").write_text(json.dumps({"fingerprint": "another run"}))
    (ck / "epoch-3.weights.h5").write_bytes(b"junk")
    assert train_tiny(prepared, "p2") == reference
    model = train_paths(prepared, "reference").model.read_bytes()
    assert train_paths(prepared, "p2").model.read_bytes() == model


def test_a_diverging_loss_stops_with_an_error_and_no_model(prepared, tmp_path) -> None:
    poisoned = tmp_path / "poisoned"
    shutil.copytree(prepared / "data/prepared", poisoned / "data/prepared")
    x, y = load_split(poisoned / "data/prepared/train")
    x[7, 3, 3] = np.nan
    save_split(poisoned / "data/prepared/train", x, y)
    with pytest.raises(UserError, match=r"^training diverged in epoch 1: loss is nan; no model"):
        train_tiny(poisoned, "out")
    # No model, summary or checkpoint; DVCLive's folder, empty: no epoch ended to log.
    logs = train_paths(poisoned, "out").logs
    assert sorted((poisoned / "out").rglob("*")) == [logs.parent, logs]


def test_the_summary_names_the_best_epoch(prepared, reference) -> None:
    history = reference
    summary = json.loads((train_paths(prepared, "reference").summary).read_text())["training"]
    best = int(np.argmax(history["val_accuracy"]))
    assert summary["best_epoch"] == best + 1
    assert summary["best_val_accuracy"] == round(history["val_accuracy"][best], 6)
    assert summary == {
        "best_val_accuracy": round(history["val_accuracy"][best], 6),
        "best_epoch": best + 1,
        "epochs_run": len(history["loss"]),
    }
    # The plots count epochs as the summary does: its best epoch is drawn at that step.
    logged = pd.read_csv(train_paths(prepared, "reference").logs / ACCURACY_LOG, sep="\t")
    assert logged.loc[logged["accuracy"].idxmax(), "step"] == summary["best_epoch"]
    live = json.loads((train_paths(prepared, "reference").logs / "metrics.json").read_text())
    assert live["step"] == summary["epochs_run"]


def test_shifts_move_whole_images_within_the_limit_and_only_when_asked() -> None:
    images = np.zeros((400, 28, 28), dtype=np.float32)
    images[:, 10:18, 12:16] = (1 + np.arange(400) / 1000)[:, None, None]  # image i's value
    order = np.random.default_rng(1).permutation(400)
    assert np.array_equal(epoch_images(images, order, 0, np.random.default_rng(0)), images[order])
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    shifted = epoch_images(padded, order, 2, np.random.default_rng(0))
    assert shifted.shape == images.shape and shifted.dtype == np.float32
    np.testing.assert_array_equal(shifted.max(axis=(1, 2)), images[order].max(axis=(1, 2)))
    lit = shifted > 0
    assert (lit.sum(axis=(1, 2)) == 32).all()  # nothing cut off: the block moved whole
    rows = np.argmax(lit.any(axis=2), axis=1) - 10
    cols = np.argmax(lit.any(axis=1), axis=1) - 12
    assert set(rows) == set(cols) == {-2, -1, 0, 1, 2}
    again = epoch_images(padded, order, 2, np.random.default_rng(0))
    assert np.array_equal(shifted, again)


class Fixed:
    """A generator whose every draw is the top of its range."""

    def uniform(self, low: float, high: float, size: int) -> np.ndarray:
        return np.full(size, high)


def test_warps_turn_and_scale_about_the_centre_and_repeat_with_the_generator() -> None:
    images = np.zeros((2, 28, 28), dtype=np.float32)
    images[:, 4:24, 13:15] = 1  # a vertical bar, 20 rows by 2 columns
    assert np.array_equal(warped(images, 0.0, 0.0, np.random.default_rng(0)), images)
    turned = warped(images, 90.0, 0.0, Fixed())  # a quarter turn: the bar lies down
    assert np.array_equal(turned[0] > 0.5, images[0].T > 0.5)
    larger = warped(images, 0.0, 0.25, Fixed())  # 1.25 times: 25 rows, give or take an edge
    rows = np.flatnonzero((larger[0] > 0.5).any(axis=1))
    assert 24 <= len(rows) <= 26 and abs(rows.mean() - 13.5) < 0.5
    assert np.isclose(turned.sum(), images.sum()) and larger.sum() > images.sum()
    drawn = [warped(images, 10.0, 0.1, np.random.default_rng(3)) for _ in range(2)]
    assert np.array_equal(*drawn) and not np.array_equal(drawn[0][0], drawn[0][1])


def test_bidirectional_gru_and_simple_rnn_train_too(prepared) -> None:
    for cell, layer in (("gru", "GRU"), ("simple_rnn", "SimpleRNN")):
        params = tiny_train(cell=cell, bidirectional=True, units=8, epochs=2, augment_shift=1)
        history = train_into(params, prepared, cell)
        assert len(history["loss"]) == 2
        model = keras.saving.load_model(train_paths(prepared, cell).model, safe_mode=True)
        assert type(model.layers[1]).__name__ == "Bidirectional"
        assert type(model.layers[1].forward_layer).__name__ == layer


def test_gallery_picks_the_most_confident_mistakes_and_is_byte_stable(tmp_path: Path) -> None:
    actual = np.array([0, 1, 2, 3, 4])
    probabilities = np.full((5, 10), 0.01)
    probabilities[[0, 1, 2, 3, 4], [0, 7, 2, 5, 9]] = [0.9, 0.6, 0.9, 0.95, 0.6]
    assert worst_errors(probabilities, actual, 16).tolist() == [3, 1, 4]
    assert worst_errors(probabilities, actual, 2).tolist() == [3, 1]
    images = np.random.default_rng(0).random((5, 28, 28), dtype=np.float32)
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    draw_gallery(images, actual, probabilities, first)
    draw_gallery(images, actual, probabilities, second)
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.read_bytes() == second.read_bytes()
    assert b"Software" not in first.read_bytes()
