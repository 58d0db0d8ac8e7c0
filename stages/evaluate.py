"""Stage 4: score the model on the full test split.

Writes the flat metrics file `dvc metrics diff` compares, a per-class precision/recall/F1
table, and one actual/predicted row per test image for DVC's confusion-matrix plot.
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from stages.atomic import staged_file
from stages.dataset import load_split
from stages.errors import cli
from stages.idx import NUM_CLASSES
from stages.params import EvaluateParams, load_params

MODEL = Path("models/model.keras")
TEST_DIR = Path("data/prepared/test")
METRICS = Path("reports/metrics.json")
CLASSES = Path("reports/classes.csv")
PREDICTIONS = Path("reports/predictions.csv")


def per_class(actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Precision, recall, F1 and support for each digit (0 where a class is never predicted)."""
    digits = pd.Index(range(NUM_CLASSES))
    confusion = pd.crosstab(
        pd.Series(actual, name="actual"), pd.Series(predicted, name="predicted")
    )
    confusion = confusion.reindex(index=digits, columns=digits, fill_value=0)
    hits = pd.Series(np.diag(confusion), index=digits)
    precision = (hits / confusion.sum(axis=0)).fillna(0.0)
    recall = (hits / confusion.sum(axis=1)).fillna(0.0)
    f1 = (2 * precision * recall / (precision + recall)).fillna(0.0)
    table = pd.DataFrame(
        {
            "digit": digits,
            "support": confusion.sum(axis=1),
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
    )
    return table.round(6)


def run(
    params: EvaluateParams,
    model_path: Path,
    test_dir: Path,
    metrics_path: Path,
    classes_path: Path,
    predictions_path: Path,
) -> dict:
    """Score model_path on test_dir and write the three reports; return the metrics."""
    import keras

    model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    images, actual = load_split(test_dir)
    probabilities = model.predict(images, batch_size=params.batch_size, verbose=0)
    predicted = probabilities.argmax(axis=1)
    chosen = probabilities[np.arange(len(actual)), actual].astype(np.float64)
    loss = float(-np.log(np.clip(chosen, 1e-7, 1.0)).mean())
    table = per_class(actual, predicted)
    errors = int((predicted != actual).sum())
    metrics = {
        "test": {
            "accuracy": round(1 - errors / len(actual), 6),
            "loss": round(loss, 6),
            "macro_f1": round(float(table["f1"].mean()), 6),
            "errors": errors,
        }
    }
    with staged_file(metrics_path) as path:
        path.write_text(json.dumps(metrics, indent=2) + "\n")
    with staged_file(classes_path) as path:
        table.to_csv(path, index=False, lineterminator="\n")
    with staged_file(predictions_path) as path:
        rows = pd.DataFrame({"actual": actual, "predicted": predicted})
        rows.to_csv(path, index=False, lineterminator="\n")
    return metrics


def main() -> None:
    params = load_params()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ log spam, not errors
    run(params.evaluate, MODEL, TEST_DIR, METRICS, CLASSES, PREDICTIONS)


if __name__ == "__main__":
    cli(main)
