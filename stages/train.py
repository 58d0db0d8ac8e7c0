"""Stage 3: fit the recurrent classifier on the training split, keep the best validation epoch.

Writes the model, DVCLive's per-epoch logs (reports/train), a summary (reports/train.json)
and which machine made the run (reports/machine.json). Seeded, resumable after a kill, and
logged live: rowlstm/train_loop.py is the loop and says why it is as it is;
rowlstm/train_checkpoint.py is what a killed run resumes from.
"""

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rowlstm.errors import cli
from rowlstm.params import TrainParams, load_params
from rowlstm.paths import TrainPaths
from rowlstm.train_distribution import task
from rowlstm.train_loop import train

if TYPE_CHECKING:
    import keras


def run(
    params: TrainParams,
    paths: TrainPaths,
    on_epoch: Callable[["keras.Model", float], None] | None = None,
) -> dict[str, list[float]]:
    """Train (or resume), save the best-validation model, return Keras' per-epoch metrics.

    on_epoch(model, seconds) is called after each epoch, outside the timed part: make bench
    uses it to score the test split per epoch, which the stage itself never looks at.
    Under multi_worker every worker trains (each step all-reduces their gradients), but
    only the chief writes to the given paths; the others write into a temporary folder
    that is removed when they finish, and read the same data.
    """
    role = task(params.distribution)
    with contextlib.ExitStack() as stack:
        if not role.chief:
            prefix = f"train-{role.kind}-{role.index}-"
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
            paths = paths.under(folder)
        return train(params, role, paths, on_epoch)


def main() -> None:
    params = load_params()
    run(params.train, TrainPaths())


if __name__ == "__main__":
    cli(main)
