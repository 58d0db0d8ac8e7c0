"""One training in a worker process: the peer, or our train stage, timed and scored per epoch.

Each runs in a fresh process (bench/run.py), so no run inherits another's TensorFlow state.
Our stage is measured through stages.train.run itself, the function `dvc repro` calls.
Test accuracy is scored after each epoch, outside the timed part, to find the time to
99.0%; only the bench looks at the test split during training (the stage selects on the
validation split). TensorFlow is imported only once the worker has its first turn:
importing it is work too.
"""

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.interleave import pass_turn, take_turn
from bench.settings import train_params
from rowlstm.paths import PREPARED, TrainPaths
from rowlstm.split_files import load_split

if TYPE_CHECKING:
    import keras


def train_run(kind: str, epochs: int) -> dict:
    """Train the peer ('peer') or our stage ('ours', or 'ours-peer' at the peer's settings);
    per-epoch seconds and test accuracy, the final model's accuracy, the epoch's FLOPs
    and its floor (bench/floor.py, measured last, with the machine to itself).

    Under interleaved(), it starts on its first turn and passes the turn after each epoch,
    once that epoch is timed and scored.
    """
    take_turn()
    from bench.floor import floor_seconds
    from bench.flops import flops_per_epoch

    x_test, y_test = load_split(PREPARED / "test")
    seconds: list[float] = []
    accuracy: list[float] = []

    def on_epoch(model: "keras.Model", elapsed: float) -> None:
        seconds.append(elapsed)
        accuracy.append(accuracy_of(model, x_test, y_test))
        pass_turn()

    model = _train_peer(epochs, on_epoch) if kind == "peer" else _train_ours(kind, epochs, on_epoch)
    samples = len(np.load(PREPARED / "train/y.npy", allow_pickle=False))
    # The peer's batch is ours at its settings' (the bench checked that before timing).
    batch_size = train_params("ours" if kind == "ours" else "ours-peer", epochs).batch_size
    return {
        "seconds": seconds,
        "accuracy": accuracy,
        "final": accuracy_of(model, x_test, y_test),
        "flops": flops_per_epoch(model, samples),
        "samples": samples,
        "floor": floor_seconds(model, batch_size, samples),
    }


def accuracy_of(model: "keras.Model", x_test: np.ndarray, y_test: np.ndarray) -> float:
    """The share of test digits the model gets right."""
    predicted = model.predict(x_test, batch_size=1000, verbose=0).argmax(axis=1)
    return float((predicted == y_test).mean())


def _train_peer(epochs: int, on_epoch: Callable[["keras.Model", float], None]) -> "keras.Model":
    from bench.peer import train

    return train(PREPARED, epochs, on_epoch)


def _train_ours(
    kind: str, epochs: int, on_epoch: Callable[["keras.Model", float], None]
) -> "keras.Model":
    """Our train stage, its outputs in a temporary folder; the model it saved."""
    from rowlstm.model import load_classifier
    from stages.train import run

    with tempfile.TemporaryDirectory() as tmp:
        paths = TrainPaths().under(Path(tmp))
        run(train_params(kind, epochs), paths, on_epoch=on_epoch)
        return load_classifier(paths.model)
