"""The reference peer: the plain Keras 3 script a user would write in an afternoon.

LSTM(128) -> Dense(10), Adam(1e-3), batch 128, shuffled each epoch, validated on the same
5,000 images; it reads the pipeline's prepared split so both see identical data. The model
is built by its own function so that bench/architecture.py can compare ours against it.
"""

import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

BATCH_SIZE = 128


def build_model() -> keras.Model:
    """The peer's compiled model."""
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.LSTM(128),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train(
    data_dir: Path, epochs: int, on_epoch: Callable[[keras.Model, float], None]
) -> keras.Model:
    """Fit the peer; on_epoch(model, seconds) runs after each epoch's timed part."""
    x = np.load(data_dir / "train/x.npy", allow_pickle=False)
    y = np.load(data_dir / "train/y.npy", allow_pickle=False)
    validation = (
        np.load(data_dir / "val/x.npy", allow_pickle=False),
        np.load(data_dir / "val/y.npy", allow_pickle=False),
    )
    model = build_model()
    model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        validation_data=validation,
        callbacks=[_Timer(on_epoch)],
        verbose=0,
    )
    return model


class _Timer(keras.callbacks.Callback):
    """Times each epoch (training and validation, as Keras runs them) and reports it."""

    def __init__(self, report: Callable[[keras.Model, float], None]) -> None:
        super().__init__()
        self.report = report

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.report(self.model, time.perf_counter() - self.start)
