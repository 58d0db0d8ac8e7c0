"""The PyTorch peer's training in a worker process (make bench TORCH=1): bench/peer_torch.py,
timed and scored per epoch like the others (bench/training.py).

It runs under .venv-torch's Python, whose lock holds torch and numpy alone
(requirements-torch.lock): of ours it imports only the standard-library bench/interleave.py
and bench/lstm_flops.py, and the script. torch is imported only once the worker has its first
turn: importing it is work too. Test accuracy is scored after each epoch, outside the timed
part. Its floor (bench/floor.py) is TensorFlow's and is not measured for it.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from bench.interleave import pass_turn, take_turn
from bench.lstm_flops import lstm_classifier_flops


def main() -> None:
    """The worker: train on its turns; its JSON result on the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the prepared splits' folder")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True, help="torch.manual_seed's")
    args = parser.parse_args()
    print(json.dumps(train_run(args.data, args.epochs, args.seed)))


def train_run(data_dir: Path, epochs: int, seed: int) -> dict:
    """Per-epoch seconds, validation and test accuracy, the final test accuracy, the epoch's
    matmul FLOPs, and the threads torch used (its default: the plain script sets none)."""
    take_turn()
    import torch

    from bench.peer_torch import Classifier, accuracy, load_split, train

    x_test, y_test = load_split(data_dir / "test")
    seconds: list[float] = []
    validation: list[float] = []
    tested: list[float] = []

    def on_epoch(model: Classifier, elapsed: float, validated: float) -> None:
        seconds.append(elapsed)
        validation.append(validated)
        tested.append(accuracy(model, x_test, y_test))
        pass_turn()

    model = train(data_dir, epochs, seed, on_epoch)
    samples = len(np.load(data_dir / "train/y.npy", allow_pickle=False))
    lstm, steps = model.lstm, x_test.shape[1]  # the shapes read off the model and the data
    example = lstm_classifier_flops(
        steps, lstm.input_size, lstm.hidden_size, model.head.out_features
    )
    return {
        "seconds": seconds,
        "validation": validation,
        "accuracy": tested,
        "final": tested[-1],
        "flops": samples * example,
        "samples": samples,
        "floor": None,
        "threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    main()
