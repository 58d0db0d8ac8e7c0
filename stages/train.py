"""Stage 3: fit the recurrent classifier on the training split, select by validation accuracy.

Seeded and deterministic: the same params and data give the same weights, byte for byte.
Each epoch's shuffle order and augmentation depend only on (train.seed, epoch), and every
completed epoch is checkpointed (rowlstm/resume.py), so a killed run resumes where it
stopped and still ends with the weights of an uninterrupted one. Early stopping keeps the
best validation epoch. A loss that turns NaN or infinite stops the stage with an error
and no model.

Outputs: the model, DVCLive's per-epoch logs and reports/train.json, a short summary.
DVCLive logs where dvc.yaml declares its plots and metric (reports/train), after every
epoch, so `dvc exp show`, `dvc plots show` and the VS Code extension see a run as it trains;
a resumed run replays the checkpointed epochs into it first. Its step is the epoch's
number, counted from 1 as training.best_epoch is.
Wall-clock seconds are printed per epoch but kept out of every output: a time in a DVC
output would change dvc.lock on every identical run (make bench measures speed).
"""

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rowlstm.distribute import task
from rowlstm.errors import cli
from rowlstm.params import TrainParams, load_params
from rowlstm.paths import TrainPaths
from rowlstm.training import train

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
