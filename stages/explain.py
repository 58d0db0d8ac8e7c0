"""Stage 5: watch the model read, one row at a time.

Writes, as outputs DVC versions, plots and compares like any other:

- reports/rows.csv: after k = 1..28 rows, the test accuracy of the answer the model would
  give, and the mean probability it gives the true digit; row 28 is the model's own
  answer. `dvc plots diff` overlays it across experiments (LSTM against GRU, say).
- reports/reading.png: the first test digit of each class, beside the probability of each
  digit after each row and the first recurrent layer's gates and state, row by row.

A bidirectional model has no answer after row k: the table then has no rows and the
picture says why. How the model answers after each row: rowlstm/row_by_row.py; the table
and the picture: rowlstm/explain_outputs.py; what they show: docs/reading.md.
"""

import numpy as np
import pandas as pd

from rowlstm.atomic import staged_file
from rowlstm.errors import cli
from rowlstm.explain_outputs import draw_reading, first_of_each_class, per_row
from rowlstm.idx import NUM_CLASSES
from rowlstm.params import ExplainParams, load_params
from rowlstm.paths import ExplainPaths
from rowlstm.split_files import load_split


def run(params: ExplainParams, paths: ExplainPaths) -> pd.DataFrame:
    """Score the model after every row and draw the reading of a digit of each class."""
    from rowlstm.model import load_classifier
    from rowlstm.row_by_row import NO_ROW_ANSWER, first_recurrent, reads_in_order, stepwise

    model = load_classifier(paths.model)
    images, actual = load_split(paths.test)
    shown = first_of_each_class(actual)
    if reads_in_order(model):
        answers = stepwise(model).predict(images, batch_size=params.batch_size, verbose=0)
        table = per_row(answers, actual)
    else:
        print(f"explain: {NO_ROW_ANSWER}", flush=True)
        table, answers = per_row(np.zeros((len(actual), 0, NUM_CLASSES)), actual), None
    with staged_file(paths.rows) as path:
        table.to_csv(path, index=False, lineterminator="\n")
    with staged_file(paths.picture) as path:
        picks = answers[shown] if answers is not None else None
        draw_reading(images[shown], actual[shown], picks, first_recurrent(model), path)
    return table


def main() -> None:
    params = load_params()
    run(params.explain, ExplainPaths())


if __name__ == "__main__":
    cli(main)
