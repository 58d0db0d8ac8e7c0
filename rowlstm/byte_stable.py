"""Scores and pictures whose bytes depend on their content alone, the same way everywhere.

So DVC sees an identical rerun as unchanged: the accuracy is computed from counts and
rounded to 6 places (reports/rows.csv's last row then equals reports/metrics.json's test
accuracy exactly, and CI's judge checks both against the error count), and a PNG has a
fixed dpi and no "Software" stamp (which names matplotlib's version).
"""

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def accuracy(errors: int, count: int) -> float:
    """The share of `count` answers that are right, rounded to 6 places."""
    return round(1 - errors / count, 6)


def save_png(figure: "Figure", path: Path) -> None:
    """The figure as a PNG whose bytes depend on its content alone."""
    figure.savefig(path, format="png", dpi=72, metadata={"Software": None})
