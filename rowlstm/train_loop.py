"""The train stage's loop: the seeded model, resumed from its checkpoint, fitted one epoch
at a time, logged live, stopped early; then the best epoch's model and a summary.

Seeded and deterministic: the same params and data give the same weights, byte for byte.
Each epoch's shuffle order and augmentation depend only on (train.seed, epoch), drawn in
numpy (`epoch_images`, `warped`), and every completed epoch is checkpointed
(rowlstm/train_checkpoint.py), so a killed run resumes where it stopped and still ends with
the weights of an uninterrupted one. Early stopping keeps the best validation epoch; a loss
that turns NaN or infinite stops the stage with an error and no model.
"""

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rowlstm.atomic import staged_file, writing
from rowlstm.errors import UserError
from rowlstm.params import TrainParams
from rowlstm.paths import TrainPaths
from rowlstm.split_files import load_split
from rowlstm.train_distribution import Task

if TYPE_CHECKING:
    import keras
    from dvclive import Live

    from rowlstm.train_checkpoint import Checkpoint, Progress


def train(
    params: TrainParams,
    role: Task,
    paths: TrainPaths,
    on_epoch: Callable[["keras.Model", float], None] | None,
) -> dict[str, list[float]]:
    """Train (or resume) as `role`, write the model, logs and summary into paths, and return
    Keras' metrics per epoch; on_epoch(model, seconds) is called after each epoch."""
    from dvclive import Live

    from rowlstm.train_checkpoint import Checkpoint, fingerprint

    x_train, y_train = load_split(paths.prepared / "train")
    validation = load_split(paths.prepared / "val")
    model = _build(params, role, steps_per_epoch=-(-len(x_train) // params.batch_size))
    checkpoint = Checkpoint(
        paths.checkpoint,
        fingerprint(params, [paths.prepared / "train", paths.prepared / "val"]),
    )
    progress = _resume(params, checkpoint, model)
    margin = params.augment_shift
    padded = np.pad(x_train, ((0, 0), (margin, margin), (margin, margin))) if margin else x_train
    with writing(paths.logs):  # resume=False: it clears what a killed run left
        live = Live(str(paths.logs), save_dvc_exp=False, dvcyaml=None)
    for number, logs in enumerate(progress.history, start=1):  # a resumed run's epochs
        _log(live, number, logs)
    for epoch in range(len(progress.history), params.epochs):
        if progress.stale_epochs() >= params.patience:
            break
        start = time.perf_counter()
        logs = _fit_epoch(model, params, epoch, (padded, y_train), validation)
        _stop_if_diverged(logs, epoch, checkpoint)
        progress.add(logs)
        checkpoint.save(model, progress)
        _log(live, epoch + 1, logs)
        # Printed, never written: a time in a DVC output would change dvc.lock on every
        # identical run (make bench measures speed).
        seconds = time.perf_counter() - start
        if on_epoch:
            with averaged_weights(model):  # the weights the stage would keep
                on_epoch(model, seconds)
        scores = ", ".join(f"{name} {value:.4f}" for name, value in logs.items())
        print(f"epoch {epoch + 1}/{params.epochs}: {scores} ({seconds:.1f} s)", flush=True)
    with writing(paths.logs):
        live.end()
    _write_outputs(model, progress, checkpoint, paths)
    return {name: [logs[name] for logs in progress.history] for name in progress.history[0]}


def _build(params: TrainParams, role: Task, steps_per_epoch: int) -> "keras.Model":
    """The seeded, compiled model with its optimizer's slots, inside the distribution scope."""
    import keras
    import tensorflow as tf

    from rowlstm.model import build_model
    from rowlstm.train_device import device_line
    from rowlstm.train_distribution import strategy

    print(device_line(), flush=True)
    keras.utils.set_random_seed(params.seed)
    if not params.jit_compile:
        # Keras refuses XLA under op determinism; XLA on CPU is deterministic on its own
        # (tests/test_reproducibility.py checks the bytes either way).
        tf.config.experimental.enable_op_determinism()
    replicas = strategy(params.distribution)
    with replicas.scope():
        model = build_model(params, steps_per_epoch=steps_per_epoch)
        model.optimizer.build(model.trainable_variables)
    if params.ema_momentum:
        # Keras' fit() ends by copying the weights' moving average into the model. This
        # loop calls fit() once an epoch and goes on training the weights themselves: the
        # average is put in only to validate and to save (averaged_weights).
        model.optimizer.finalize_variable_values = lambda variables: None
    if params.distribution != "none":
        print(
            f"{params.distribution}: {replicas.num_replicas_in_sync} replica(s); this is "
            f"{role.kind} {role.index} of {role.cluster_size}{' (chief)' if role.chief else ''}",
            flush=True,
        )
    return model


def _resume(params: TrainParams, checkpoint: "Checkpoint", model: "keras.Model") -> "Progress":
    """The epochs already done, their weights loaded into model (none for a fresh run)."""
    from rowlstm.train_checkpoint import Progress

    if params.distribution == "multi_worker":
        # Workers restarted one by one could not agree on where to resume: start over.
        checkpoint.clear()
        return Progress()
    progress = checkpoint.load(model)
    if progress.history:
        print(f"resuming after epoch {len(progress.history)} of {params.epochs}", flush=True)
    return progress


def _fit_epoch(
    model: "keras.Model",
    params: TrainParams,
    epoch: int,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:
    """One epoch over the shuffled, shifted (and turned and scaled, when asked) images;
    Keras' metrics for it (loss, accuracy, ...).

    `train` holds the images padded by train.augment_shift on every side, and their labels.
    """
    import keras

    from rowlstm.model import training_targets

    padded, labels = train
    rng = np.random.default_rng([params.seed, epoch])
    order = rng.permutation(len(labels))
    images = epoch_images(padded, order, params.augment_shift, rng)
    if params.augment_rotate or params.augment_scale:
        images = warped(images, params.augment_rotate, params.augment_scale, rng)
    val_images, val_targets = validation[0], training_targets(validation[1], params)
    fitted = model.fit(
        images,
        training_targets(labels[order], params),
        # With a moving average, validation scores the average, after fit (below).
        validation_data=None if params.ema_momentum else (val_images, val_targets),
        batch_size=params.batch_size,
        epochs=epoch + 1,
        initial_epoch=epoch,
        shuffle=False,
        callbacks=[keras.callbacks.TerminateOnNaN()],
        verbose=0,
    )
    logs = {name: float(values[-1]) for name, values in fitted.history.items()}
    if params.ema_momentum:
        with averaged_weights(model):
            scores = model.evaluate(
                val_images, val_targets, batch_size=params.batch_size, verbose=0, return_dict=True
            )
        logs |= {f"val_{name}": float(value) for name, value in scores.items()}
    return logs


@contextlib.contextmanager
def averaged_weights(model: "keras.Model") -> Iterator[None]:
    """The optimizer's moving average of the weights in the model for the block; then the
    weights themselves again, bit for bit. As it is without train.ema_momentum.

    Keras' SwapEMAWeights callback swaps by additions, which round; this copies.
    """
    if not model.optimizer.use_ema:
        yield
        return
    averages = model.optimizer._model_variables_moving_average  # as SwapEMAWeights reads it
    variables = model.trainable_variables  # the optimizer was built on them, in this order
    weights = [variable.numpy() for variable in variables]
    for variable, average in zip(variables, averages, strict=True):
        variable.assign(average)
    try:
        yield
    finally:
        for variable, value in zip(variables, weights, strict=True):
            variable.assign(value)


def _stop_if_diverged(logs: dict[str, float], epoch: int, checkpoint: "Checkpoint") -> None:
    """A NaN or infinite loss ends the stage with no model, and no checkpoint to resume."""
    if not all(math.isfinite(value) for value in logs.values()):
        checkpoint.clear()
        raise UserError(
            f"training diverged in epoch {epoch + 1}: loss is {logs['loss']}; "
            "no model was written (lower train.learning_rate, or set train.clipnorm)"
        )


def _log(live: "Live", number: int, logs: dict[str, float]) -> None:
    """Epoch `number` into DVCLive, under the names its Keras callback would use.

    After every epoch, where dvc.yaml declares the plots and metric (reports/train), so
    `dvc exp show`, `dvc plots show` and the VS Code extension see a run as it trains. The
    step is the epoch's number counted from 1, as training.best_epoch is.
    """
    from dvclive.utils import standardize_metric_name

    with writing(Path(live.dir)):
        live.step = number
        for name, value in logs.items():
            live.log_metric(standardize_metric_name(name, "dvclive.keras"), value)
        live.next_step()


def _write_outputs(
    model: "keras.Model", progress: "Progress", checkpoint: "Checkpoint", paths: TrainPaths
) -> None:
    """The best epoch's model, the summary and the machine's record; then the checkpoint
    goes."""
    from rowlstm.machine import describe
    from rowlstm.model import save_model

    checkpoint.load_best(model, progress)
    with averaged_weights(model):
        save_model(model, paths.model)
    # Root key "training", not "train": a metric named like a params key (train.epochs)
    # makes `dvc exp show` prefix both columns with their file names.
    summary = {
        "training": {
            "best_val_accuracy": round(progress.best_val_accuracy, 6),
            "best_epoch": progress.best_epoch + 1,
            "epochs_run": len(progress.history),
        }
    }
    for target, record in ((paths.summary, summary), (paths.machine, {"machine": describe()})):
        with staged_file(target) as path:
            path.write_text(json.dumps(record, indent=2) + "\n")
    checkpoint.clear()


def epoch_images(
    padded: np.ndarray, order: np.ndarray, limit: int, rng: np.random.Generator
) -> np.ndarray:
    """The epoch's training images in `order`, each shifted by a random whole number of
    pixels in [-limit, limit] along both axes, zeros shifted in.

    `padded` holds the images with `limit` zero pixels on every side (padded once, before
    the first epoch); each image is a crop of it, so shuffling and shifting cost one copy.
    Done in numpy from the epoch's generator (not a Keras layer), so an epoch's inputs
    depend only on (seed, epoch) and a resumed run sees exactly the same ones.
    """
    if not limit:
        return padded[order]
    side = padded.shape[1] - 2 * limit
    offsets = rng.integers(0, 2 * limit + 1, size=(len(order), 2))
    shifted = np.empty((len(order), side, side), dtype=padded.dtype)
    for dy in range(2 * limit + 1):
        for dx in range(2 * limit + 1):
            chosen = np.flatnonzero((offsets[:, 0] == dy) & (offsets[:, 1] == dx))
            shifted[chosen] = padded[order[chosen], dy : dy + side, dx : dx + side]
    return shifted


def warped(
    images: np.ndarray, degrees: float, scale: float, rng: np.random.Generator
) -> np.ndarray:
    """Each image turned by a random angle in [-degrees, degrees] and scaled by a random
    factor in [1 - scale, 1 + scale] about its centre, bilinear, zeros coming in: the
    small distortions the classic MNIST results train on. Drawn from the epoch's
    generator after the shifts, so a resumed run sees the same images; warped by
    TensorFlow's projective transform, one call for the epoch."""
    import tensorflow as tf

    count, side = len(images), images.shape[1]
    angle = np.deg2rad(rng.uniform(-degrees, degrees, count))
    zoom = rng.uniform(1 - scale, 1 + scale, count)
    # Each output pixel (x, y) reads the input at R(-angle) ((x, y) - c) / zoom + c.
    cos, sin, centre = np.cos(angle) / zoom, np.sin(angle) / zoom, (side - 1) / 2
    shift_x = centre - (cos + sin) * centre
    shift_y = centre - (cos - sin) * centre
    zeros = np.zeros(count)
    transforms = np.stack([cos, sin, shift_x, -sin, cos, shift_y, zeros, zeros], axis=1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images[..., None],
        transforms=transforms.astype(np.float32),
        output_shape=[side, side],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return out.numpy()[..., 0]
