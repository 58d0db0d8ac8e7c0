import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from stages.dataset import load_split
from stages.evaluate import draw_gallery, per_class, worst_errors
from stages.evaluate import run as evaluate
from stages.params import EvaluateParams, PrepareParams
from stages.prepare import run as prepare
from stages.train import run as train
from tests.test_model import with_


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from tests.conftest import write_mirror

    root = tmp_path_factory.mktemp("pipeline")
    write_mirror(root / "raw", gz=False)
    prepare(PrepareParams(50, 0, 3), root / "raw", root / "prepared", root / "data.json")
    return root


def train_tiny(root, name: str) -> dict:
    params = with_(units=24, epochs=6, batch_size=25, learning_rate=5e-3, lr_schedule="cosine")
    return train(params, root / "prepared", root / name / "model.keras", root / name / "logs")


def test_training_learns_logs_and_is_deterministic(prepared) -> None:
    first = train_tiny(prepared, "a")
    second = train_tiny(prepared, "b")
    assert first == second
    assert max(first["val_accuracy"]) >= 0.9
    assert (prepared / "a/model.keras").read_bytes() == (prepared / "b/model.keras").read_bytes()
    logged = pd.read_csv(prepared / "a/logs/plots/metrics/eval/accuracy.tsv", sep="\t")
    assert logged["step"].tolist() == list(range(len(first["val_accuracy"])))
    np.testing.assert_allclose(logged["accuracy"], first["val_accuracy"], rtol=1e-6)


def test_early_stopping_restores_the_best_validation_epoch(prepared) -> None:
    params = with_(units=8, epochs=30, patience=1, learning_rate=0.5, optimizer="sgd")
    history = train(params, prepared / "prepared", prepared / "es/model.keras", prepared / "es/l")
    assert len(history["val_accuracy"]) < 30
    model = keras.saving.load_model(prepared / "es/model.keras")
    x, y = load_split(prepared / "prepared/val")
    accuracy = (model.predict(x, verbose=0).argmax(1) == y).mean()
    assert accuracy == pytest.approx(max(history["val_accuracy"]), abs=1e-6)


def test_evaluate_writes_metrics_table_and_confusion_rows(prepared) -> None:
    train_tiny(prepared, "e")
    out = prepared / "reports"
    metrics = evaluate(
        EvaluateParams(batch_size=64),
        prepared / "e/model.keras",
        prepared / "prepared/test",
        out / "metrics.json",
        out / "classes.csv",
        out / "predictions.csv",
        out / "errors.png",
    )
    assert (out / "errors.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((out / "metrics.json").read_text()) == metrics
    test = metrics["test"]
    assert set(test) == {"accuracy", "loss", "macro_f1", "errors"}
    rows = pd.read_csv(out / "predictions.csv")
    assert len(rows) == 200 and list(rows.columns) == ["actual", "predicted"]
    assert test["errors"] == int((rows.actual != rows.predicted).sum())
    assert test["accuracy"] == pytest.approx(1 - test["errors"] / 200)
    assert test["accuracy"] >= 0.9
    model = keras.saving.load_model(prepared / "e/model.keras")
    x, y = load_split(prepared / "prepared/test")
    expected_loss = keras.losses.sparse_categorical_crossentropy(y, model.predict(x, verbose=0))
    assert test["loss"] == pytest.approx(float(np.mean(expected_loss)), abs=1e-5)
    table = pd.read_csv(out / "classes.csv")
    assert table["support"].sum() == 200
    assert test["macro_f1"] == pytest.approx(table["f1"].mean(), abs=1e-6)


def test_per_class_scores_on_a_hand_checked_example() -> None:
    actual = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    table = per_class(actual, predicted).set_index("digit")
    assert table.loc[0, "precision"] == 0.5 and table.loc[0, "recall"] == 0.5
    assert table.loc[1, "precision"] == pytest.approx(2 / 3) and table.loc[1, "recall"] == 1.0
    assert table.loc[1, "f1"] == pytest.approx(0.8)
    assert table.loc[2, "precision"] == 1.0 and table.loc[2, "recall"] == 0.5
    assert table.loc[5].tolist() == [0, 0.0, 0.0, 0.0]


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
