"""Stage 4: score the model on the full test split.

Writes the flat metrics file `dvc metrics diff` compares, a per-class precision/recall/F1
table, one actual/predicted row per test image for DVC's confusion-matrix plot, and a
gallery of the worst mistakes, because a confusion matrix says which digits get mixed up
but not why: the pictures usually do.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from rowlstm.atomic import staged_file
from rowlstm.dataset import load_split
from rowlstm.errors import cli
from rowlstm.idx import NUM_CLASSES
from rowlstm.params import EvaluateParams, load_params
from rowlstm.paths import EvaluatePaths
from rowlstm.results import accuracy, save_png

GALLERY_SIZE = 16  # 4 x 4 tiles: a picture, not a result, so not a param


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


def worst_errors(probabilities: np.ndarray, actual: np.ndarray, count: int) -> np.ndarray:
    """Indices of the misclassified images the model was surest about, most confident first.

    Confident mistakes are the informative ones (a mislabelled digit, a 4 written like a 9);
    ties keep test-set order, so the choice is reproducible.
    """
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != actual)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:count]]


def draw_gallery(
    images: np.ndarray, actual: np.ndarray, probabilities: np.ndarray, path: Path
) -> None:
    """A PNG grid of the worst mistakes, titled true -> predicted (probability).

    Byte-stable, since DVC's lock and our tests compare reports byte for byte: a fixed
    size and dpi, and no "Software" version stamp in the PNG metadata.
    """
    from matplotlib.figure import Figure

    chosen = worst_errors(probabilities, actual, GALLERY_SIZE)
    side = int(np.ceil(np.sqrt(GALLERY_SIZE)))
    figure = Figure(figsize=(2 * side, 2 * side + 0.4), layout="constrained")
    figure.suptitle(
        f"Worst {len(chosen)} of {int((probabilities.argmax(axis=1) != actual).sum())}"
        " misclassified test digits: true -> predicted (probability)"
    )
    for tile in range(side * side):
        axes = figure.add_subplot(side, side, tile + 1)
        axes.set_axis_off()
        if tile < len(chosen):
            index = chosen[tile]
            guess = int(probabilities[index].argmax())
            axes.imshow(images[index], cmap="gray", vmin=0, vmax=1)
            axes.set_title(
                f"#{index}: {actual[index]} -> {guess} ({probabilities[index, guess]:.2f})",
                fontsize=9,
            )
    if not len(chosen):
        figure.text(0.5, 0.5, "no misclassified test digits", ha="center")
    save_png(figure, path)


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
