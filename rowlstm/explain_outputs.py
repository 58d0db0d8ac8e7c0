"""What the explain stage writes: the answer after each row, scored over the test split,
and the picture of a digit of each class read row by row."""

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rowlstm.byte_stable import accuracy, save_png
from rowlstm.idx import NUM_CLASSES

if TYPE_CHECKING:
    import keras
    from matplotlib.axes import Axes


def per_row(probabilities: np.ndarray, actual: np.ndarray) -> pd.DataFrame:
    """Accuracy and mean true-digit probability after each row, from (N, rows, 10) answers.

    Accuracy as evaluate computes it (rowlstm/byte_stable.py), so the last row equals
    reports/metrics.json's test accuracy exactly.
    """
    count, rows, _ = probabilities.shape
    errors = (probabilities.argmax(axis=2) != actual[:, None]).sum(axis=0)
    true = probabilities[np.arange(count)[:, None], np.arange(rows), actual[:, None]]
    return pd.DataFrame(
        {
            "rows_read": np.arange(1, rows + 1),
            "accuracy": [accuracy(int(e), count) for e in errors],
            "true_probability": np.round(true.astype(np.float64).mean(axis=0), 6),
        }
    )


def first_of_each_class(actual: np.ndarray) -> list[int]:
    """The index of the first test digit of each class, in class order."""
    return [int(np.flatnonzero(actual == digit)[0]) for digit in range(NUM_CLASSES)]


def draw_reading(
    images: np.ndarray,
    labels: np.ndarray,
    answers: np.ndarray | None,
    layer: "keras.layers.RNN",
    path: Path,
) -> None:
    """One line of three panels per digit, sharing the rows as their vertical axis: the
    image, the probability of each digit after each row, and the cell's mean signals.

    Byte-stable like evaluate's gallery: fixed size and dpi, no "Software" stamp.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 2.2 * len(images) + 0.4), layout="constrained")
    figure.suptitle("Read row by row: the digit, the answer after each row, the cell's signals")
    grid = figure.subplots(len(images), 3, squeeze=False, width_ratios=[1, 1.2, 1.6])
    for k, (image_axes, answer_axes, signal_axes) in enumerate(grid):
        image_axes.imshow(images[k], cmap="gray", vmin=0, vmax=1)
        image_axes.set_title(f"a {labels[k]}", fontsize=9)
        image_axes.set_ylabel("row")
        if answers is None:
            answer_axes.text(0.5, 0.5, "bidirectional:\nno answer after row k", ha="center")
            answer_axes.set_axis_off()
        else:
            answer_axes.imshow(answers[k], cmap="Blues", vmin=0, vmax=1, aspect="auto")
            answer_axes.set_xticks(range(NUM_CLASSES))
            answer_axes.set_title("probability of each digit", fontsize=9)
        _draw_signals(signal_axes, layer, images[k])
        if k == 0:
            signal_axes.legend(fontsize=7, loc="lower right")
    save_png(figure, path)


def _draw_signals(axes: "Axes", layer: "keras.layers.RNN", rows: np.ndarray) -> None:
    """Each gate's mean over the units, and the mean size of the state, after each row."""
    from rowlstm.row_by_row import cell_signals

    for name, values in cell_signals(layer, rows).items():
        size = name in ("c", "h")
        axes.plot(
            np.abs(values).mean(axis=1) if size else values.mean(axis=1),
            np.arange(len(rows)),
            label=f"mean |{name}|" if size else f"{name} (mean)",
        )
    axes.set_ylim(len(rows) - 0.5, -0.5)  # row 1 on top, as in the image
    axes.set_title(f"{type(layer).__name__} cell, mean over {layer.cell.units} units", fontsize=9)
