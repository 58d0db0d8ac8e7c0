"""Stage 3: fit the LSTM on the prepared training split, select by validation accuracy.

Seeded and deterministic: the same params and data give the same weights, byte for byte,
on the same machine and software. Per-epoch metrics go to DVCLive (reports/train), and
early stopping restores the weights of the best validation epoch before saving.
"""

import os
from pathlib import Path

from stages.dataset import load_split
from stages.errors import cli
from stages.params import TrainParams, load_params

DATA_DIR = Path("data/prepared")
MODEL = Path("models/model.keras")
LOG_DIR = Path("reports/train")


def run(params: TrainParams, data_dir: Path, model_path: Path, log_dir: Path) -> dict:
    """Train, save the best-validation model to model_path, return the Keras history."""
    import keras
    import tensorflow as tf
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    from stages.model import build_model, save_model

    keras.utils.set_random_seed(params.seed)
    tf.config.experimental.enable_op_determinism()
    x_train, y_train = load_split(data_dir / "train")
    validation = load_split(data_dir / "val")
    model = build_model(params, steps_per_epoch=-(-len(x_train) // params.batch_size))
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy",
            mode="max",
            patience=params.patience,
            restore_best_weights=True,
        ),
        DVCLiveCallback(live=Live(str(log_dir), save_dvc_exp=False, dvcyaml=None)),
    ]
    history = model.fit(
        x_train,
        y_train,
        validation_data=validation,
        batch_size=params.batch_size,
        epochs=params.epochs,
        shuffle=True,
        callbacks=callbacks,
        verbose=2,
    )
    save_model(model, model_path)
    return history.history


def main() -> None:
    params = load_params()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ log spam, not errors
    run(params.train, DATA_DIR, MODEL, LOG_DIR)


if __name__ == "__main__":
    cli(main)
