"""Stage 4: score the model on the full test split.

Writes the flat metrics file `dvc metrics diff` compares, a per-class table, one
actual/predicted row per test image for DVC's confusion-matrix plot, and a gallery of the
mistakes the model was surest about (rowlstm/evaluate_outputs.py says why each is there).
"""

import json

import numpy as np
import pandas as pd

from rowlstm.atomic import staged_file
from rowlstm.byte_stable import accuracy
from rowlstm.errors import cli
from rowlstm.evaluate_outputs import draw_gallery, per_class
from rowlstm.params import EvaluateParams, load_params
from rowlstm.paths import EvaluatePaths
from rowlstm.split_files import load_split


def run(params: EvaluateParams, paths: EvaluatePaths) -> dict:
    """Score paths.model on paths.test and write the four reports; return the metrics."""
    from rowlstm.model import load_classifier  # imports Keras: only once params are good

    model = load_classifier(paths.model)
    images, actual = load_split(paths.test)
    probabilities = model.predict(images, batch_size=params.batch_size, verbose=0)
    predicted = probabilities.argmax(axis=1)
    true_probability = probabilities[np.arange(len(actual)), actual].astype(np.float64)
    loss = float(-np.log(np.clip(true_probability, 1e-7, 1.0)).mean())
    table = per_class(actual, predicted)
    errors = int((predicted != actual).sum())
    metrics = {
        "test": {
            "accuracy": accuracy(errors, len(actual)),
            "loss": round(loss, 6),
            "macro_f1": round(float(table["f1"].mean()), 6),
            "errors": errors,
        }
    }
    with staged_file(paths.metrics) as path:
        path.write_text(json.dumps(metrics, indent=2) + "\n")
    with staged_file(paths.classes) as path:
        table.to_csv(path, index=False, lineterminator="\n")
    with staged_file(paths.predictions) as path:
        rows = pd.DataFrame({"actual": actual, "predicted": predicted})
        rows.to_csv(path, index=False, lineterminator="\n")
    with staged_file(paths.gallery) as path:
        draw_gallery(images, actual, probabilities, path)
    return metrics


def main() -> None:
    params = load_params()
    run(params.evaluate, EvaluatePaths())


if __name__ == "__main__":
    cli(main)
