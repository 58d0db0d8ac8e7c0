"""Resumable training: everything an epoch boundary needs, kept on disk.

A training killed mid-epoch (SIGKILL, the OOM killer, a lost machine) resumes on the next
`dvc repro` from its last completed epoch and ends with the same weights, bit for bit, as
a run that was never interrupted. That needs more than Keras' BackupAndRestore keeps: the
weights and optimizer slots, but also the state of the dropout random generators, the
early-stopping bookkeeping and the per-epoch history (each epoch's shuffle order is a
function of the seed and the epoch number: train_loop.epoch_images).

A checkpoint is only ever resumed by the run that wrote it: its fingerprint covers the
train params, the bytes of the training data and the library versions, and a checkpoint
with any other fingerprint is discarded. The folder is not a DVC output (DVC would delete
it before the stage runs); it is git-ignored and removed once the model is saved.
"""

import errno
import hashlib
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rowlstm.atomic import staged_file, writing
from rowlstm.params import TrainParams

STATE = "state.json"


@dataclass
class Progress:
    """The completed epochs: one dict of Keras metrics per epoch."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1

    @property
    def best_val_accuracy(self) -> float:
        return self.history[self.best_epoch]["val_accuracy"] if self.history else 0.0

    def add(self, logs: dict[str, float]) -> None:
        """Record an epoch; like Keras' EarlyStopping, only a strictly better score counts."""
        if not self.history or logs["val_accuracy"] > self.best_val_accuracy:
            self.best_epoch = len(self.history)
        self.history.append(logs)

    def stale_epochs(self) -> int:
        """Epochs since the best one (EarlyStopping's `wait`)."""
        return len(self.history) - 1 - self.best_epoch


def fingerprint(params: TrainParams, data_dirs: list[Path]) -> str:
    """What a checkpoint must match to be resumed: params, data bytes, library versions."""
    digest = hashlib.sha256(json.dumps(asdict(params), sort_keys=True).encode())
    digest.update(f"keras {keras.__version__} tensorflow {tf.__version__}".encode())
    for folder in data_dirs:
        for path in sorted(folder.iterdir()):
            digest.update(path.name.encode())
            with path.open("rb") as stream:
                while chunk := stream.read(1 << 24):
                    digest.update(chunk)
    return digest.hexdigest()


class Checkpoint:
    """The folder holding the last completed epoch of one training run."""

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder, self.fingerprint = folder, fingerprint

    def load(self, model: keras.Model) -> Progress:
        """Restore model (weights, optimizer, RNG state) from a matching checkpoint.

        Returns the progress to continue from; an empty one (and an emptied folder)
        when there is no checkpoint or it belongs to another run.
        """
        state = self._read_state()
        if state is None or state["fingerprint"] != self.fingerprint:
            self.clear()
            return Progress()
        model.load_weights(self.folder / state["weights"])
        for variable, value in zip(_rng_state(model), state["rng"], strict=True):
            variable.assign(np.array(value, dtype=variable.dtype))
        return Progress(history=state["history"], best_epoch=state["best_epoch"])

    def save(self, model: keras.Model, progress: Progress) -> None:
        """Write the epoch just completed; the previous one stays valid until the state
        file is replaced, so a kill at any instant leaves one consistent checkpoint."""
        epoch = len(progress.history) - 1
        weights = self.folder / _weights_name(epoch)
        with writing(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
            _check_room(model, self.folder)
            try:
                model.save_weights(weights)
            except BaseException:
                weights.unlink(missing_ok=True)  # a part of a file: not a checkpoint
                raise
        state = {
            "fingerprint": self.fingerprint,
            "weights": _weights_name(epoch),
            "best": _weights_name(progress.best_epoch),
            "best_epoch": progress.best_epoch,
            "history": progress.history,
            "rng": [variable.numpy().tolist() for variable in _rng_state(model)],
        }
        with staged_file(self.folder / STATE) as staging:
            staging.write_text(json.dumps(state))
        keep = {state["weights"], state["best"], STATE}
        for path in self.folder.glob("*.weights.h5"):
            if path.name not in keep:
                path.unlink()

    def load_best(self, model: keras.Model, progress: Progress) -> None:
        """Put the best validation epoch's weights into model (EarlyStopping's restore)."""
        model.load_weights(self.folder / _weights_name(progress.best_epoch))

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _read_state(self) -> dict | None:
        try:
            return json.loads((self.folder / STATE).read_text())
        except (OSError, ValueError):
            return None


def _check_room(model: keras.Model, folder: Path) -> None:
    """Raise ENOSPC unless the weights and optimizer slots fit twice over, plus 1 MiB.

    HDF5 does not fail when the disk fills while it writes: it crashes the process
    (a segmentation fault in h5py's close), which no handler can turn into one line.
    """
    variables = [*model.variables, *model.optimizer.variables]
    size = sum(np.dtype(v.dtype).itemsize * math.prod(v.shape) for v in variables)
    if shutil.disk_usage(folder).free < 2 * size + (1 << 20):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))


def _weights_name(epoch: int) -> str:
    return f"epoch-{epoch + 1}.weights.h5"


def _rng_state(model: keras.Model) -> list[keras.Variable]:
    """The seed generators' states (dropout masks): not part of Keras' saved weights."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]
