"""What the evaluate stage writes beside its metrics: the per-digit scores, and the gallery
of the mistakes the model was surest about (a confusion matrix says which digits get mixed
up, but not why: the pictures usually do)."""

from pathlib import Path

import numpy as np
import pandas as pd

from rowlstm.byte_stable import save_png
from rowlstm.idx import NUM_CLASSES

GALLERY_SIZE = 16  # 4 x 4 tiles: a picture, not a result, so not a param


def per_class(actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Support, errors (the digit's test images read as another), precision, recall and F1
    for each digit (0 where a class is never predicted). Every F1 is near 1, so the
    errors are what the plot shows: 3 against 14 tells digits apart, 0.996 against 0.991
    does not."""
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
            "errors": confusion.sum(axis=1) - hits,
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
