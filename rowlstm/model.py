"""The classifier: stacked LSTMs (or GRUs, or plain RNNs) read the 28 rows as time steps.

Also how it is saved and loaded: a .keras archive normally embeds the save time, so
identical weights would give different bytes (and a new DVC hash) on every run; save_model
rewrites the archive with fixed timestamps so equal models are equal files. load_classifier
loads in Keras' safe mode, for evaluate and predict alike.
"""

import json
import tempfile
import zipfile
from pathlib import Path

import keras
import numpy as np

from rowlstm.atomic import staged_file
from rowlstm.errors import UserError, one_line
from rowlstm.idx import IMAGE_SIDE, NUM_CLASSES
from rowlstm.params import TrainParams

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Batches per call into TensorFlow: Keras otherwise returns to Python after every batch
# (callbacks, logs). The same updates in the same order: the weights are identical
# (tests/test_model.py), only the per-batch overhead goes (docs/performance.md). On one
# device only: Keras' multi-step loop fails under the multi-worker strategy.
STEPS_PER_EXECUTION = 32
CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple_rnn": keras.layers.SimpleRNN}


def build_model(params: TrainParams, steps_per_epoch: int) -> keras.Model:
    """A compiled model from train params: recurrent stack -> softmax over the 10 digits.

    steps_per_epoch sizes the learning-rate schedule, which counts optimizer steps.
    """
    inputs = keras.Input(shape=(IMAGE_SIDE, IMAGE_SIDE), name="rows")
    x = inputs
    for layer in range(params.layers):
        last = layer == params.layers - 1
        recurrent = CELLS[params.cell](
            params.units, return_sequences=not last, name=f"{params.cell}_{layer}"
        )
        if params.bidirectional:
            recurrent = keras.layers.Bidirectional(recurrent, name=f"bidirectional_{layer}")
        x = recurrent(x)
        if params.dropout:
            x = keras.layers.Dropout(params.dropout, name=f"dropout_{layer}")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="digit")(x)
    model = keras.Model(inputs, outputs, name="mnist_row_lstm")
    # An explicit name: Keras otherwise numbers optimizers per process (adam_1, ...),
    # and that name is saved with the weights.
    config: dict = {
        "name": params.optimizer,
        "learning_rate": learning_rate(params, steps_per_epoch),
    }
    if params.clipnorm:
        config["clipnorm"] = params.clipnorm
    if params.ema_momentum:
        # The moving average of the weights, updated after every step, is an optimizer
        # variable: checkpointed and resumed with the rest (train_loop.averaged_weights).
        config |= {"use_ema": True, "ema_momentum": params.ema_momentum}
    optimizer = keras.optimizers.get({"class_name": params.optimizer, "config": config})
    model.compile(
        jit_compile=params.jit_compile,
        optimizer=optimizer,
        loss=_loss(params.label_smoothing),
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION if params.distribution == "none" else 1,
    )
    return model


def _loss(label_smoothing: float) -> str | keras.losses.Loss:
    """Cross-entropy on the digits' labels; with label smoothing, on targets one-hot encoded
    (training_targets): Keras' sparse loss has no smoothing."""
    if not label_smoothing:
        return "sparse_categorical_crossentropy"
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


def training_targets(labels: np.ndarray, params: TrainParams) -> np.ndarray:
    """What the compiled loss takes for these labels: the labels, or one-hot rows when
    train.label_smoothing is on."""
    if not params.label_smoothing:
        return labels
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def learning_rate(
    params: TrainParams, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The constant rate, or a cosine decay to 0 over training after a linear warmup."""
    if params.lr_schedule == "constant":
        return params.learning_rate
    warmup = min(params.warmup_epochs, params.epochs - 1) * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else params.learning_rate,
        warmup_target=params.learning_rate if warmup else None,
        warmup_steps=warmup,
        decay_steps=params.epochs * steps_per_epoch - warmup,
    )


def save_model(model: keras.Model, path: Path) -> None:
    """Save as .keras with byte-stable contents.

    Keras writes the save date, zip entry times and Python object ids (config.json's
    shared_object_id) into the archive; these are replaced by constants and by ids
    numbered in order of appearance, which keeps shared objects shared on load.
    """
    with (
        staged_file(path) as stable,
        tempfile.TemporaryDirectory(dir=path.parent) as tmp,
    ):
        raw = Path(tmp) / path.name
        model.save(raw)
        with zipfile.ZipFile(raw) as source, zipfile.ZipFile(stable, "w") as target:
            for info in sorted(source.infolist(), key=lambda item: item.filename):
                data = source.read(info)
                if info.filename == "metadata.json":
                    metadata = json.loads(data)
                    metadata.pop("date_saved", None)
                    data = json.dumps(metadata, sort_keys=True).encode()
                elif info.filename == "config.json":
                    data = json.dumps(_renumber_shared_ids(json.loads(data), {})).encode()
                fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
                fixed.compress_type = info.compress_type
                fixed.external_attr = 0o644 << 16
                target.writestr(fixed, data)


def load_classifier(path: Path) -> keras.Model:
    """The trained model, loaded in Keras' safe mode (no code from the file ever runs).

    The archive is checked first: Keras says "File not found" of a truncated one."""
    _check_archive(path)
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (OSError, ValueError, TypeError) as error:
        raise UserError(f"{path}: not a loadable Keras model ({one_line(error)})") from None


def _check_archive(path: Path) -> None:
    """A .keras file is a zip archive: refuse a truncated or corrupted one by name."""
    try:
        with zipfile.ZipFile(path) as archive:
            corrupted = archive.testzip()
    except FileNotFoundError:
        raise UserError(f"{path}: not found (run `dvc repro`, or `dvc pull` it)") from None
    except (OSError, zipfile.BadZipFile) as error:
        problem = f"not a whole .keras (zip) archive: {one_line(error)}"
    else:
        problem = f"{corrupted} inside it fails its checksum" if corrupted else ""
    if problem:
        raise UserError(
            f"{path}: damaged, {problem}; `dvc checkout` restores the last good one, "
            "or `dvc repro` makes it again"
        )


def _renumber_shared_ids(node: object, ids: dict[int, int]) -> object:
    if isinstance(node, dict):
        if "shared_object_id" in node:
            node["shared_object_id"] = ids.setdefault(node["shared_object_id"], len(ids))
        for value in node.values():
            _renumber_shared_ids(value, ids)
    elif isinstance(node, list):
        for value in node:
            _renumber_shared_ids(value, ids)
    return node
