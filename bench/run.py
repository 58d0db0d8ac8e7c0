"""`make bench`: the plain Keras peer against our train stage, side by side, on this machine.

Each run is a fresh process on the same prepared data (data/prepared): the peer script,
our train stage at the peer's exact settings, and our train stage with params.yaml; with
--torch (make bench TORCH=1) also the plain PyTorch script (bench/peer_torch.py), in its own
environment, .venv-torch. They run side by side but never at once: they take turns, one
epoch each, so a machine that slows down for a few minutes slows all alike
(bench/interleave.py). Before anything is timed, the bench checks that ours at the peer's
settings builds the peer's model (bench/settings.py, bench/architecture.py) and stops with
one line if not. The matmul peak is measured with TensorFlow itself before and after the
trainings (before only with --quick). Printed: median seconds per epoch, samples/s, GFLOP/s
(bench/flops.py) and its share of the float32 peak, test accuracy of the final model, time
to 99.0% test accuracy (scored after each epoch, outside the timed part; only here: the
stage itself selects on the validation split) and ratios to the peers (bench/report.py).

This module is the entry point and the parent; the same command with --task runs one
worker's task (a training, the peak, the check) in a fresh interpreter.
"""

import argparse
import json
import sys
from pathlib import Path

from bench.interleave import interleaved
from bench.peak import peak_gflops
from bench.report import cpu_name, machine_line, ratios, table
from bench.settings import PEER_EPOCHS, at_peer_settings
from bench.training import train_run
from rowlstm.errors import UserError, cli
from rowlstm.params import load_params
from rowlstm.paths import PREPARED

# The PyTorch script's environment, beside this checkout's .venv (make bench TORCH=1).
TORCH_PYTHON = Path(__file__).resolve().parent.parent / ".venv-torch/bin/python"


def main() -> None:
    """The bench, or with --task one worker's task (its JSON result on the last line)."""
    args = _arguments()
    if args.task:
        print(json.dumps(work(args.task, args.epochs, args.size)))
    else:
        bench(args.quick, args.save, args.torch)


def bench(quick: bool, save: Path | None, torch: bool = False) -> None:
    """Check the settings, measure the peak and the interleaved runs (the PyTorch script's
    too with `torch`), print the table."""
    if not (PREPARED / "train/x.npy").exists():
        raise UserError("no data/prepared: run `dvc repro prepare` first (make bench does)")
    if torch and not TORCH_PYTHON.exists():
        raise UserError(
            "no .venv-torch, the PyTorch script's environment: `make bench TORCH=1` builds it "
            "(from requirements-torch.lock) and runs the bench"
        )
    train = load_params().train
    at_peer_settings(train)  # a train option with no peer setting stops here, at once
    check_same_model()
    size = 1024 if quick else 4096
    peaks = [measure_peak(size)]
    peer_epochs = 2 if quick else PEER_EPOCHS
    commands = {"peer": command("peer", peer_epochs)}
    if torch:  # seeded with params.yaml's seed, as ours are
        commands["peer-torch"] = torch_command(peer_epochs, train.seed)
    commands["ours-peer"] = command("ours-peer", peer_epochs)
    commands["ours"] = command("ours", 2 if quick else train.epochs)
    runs = interleaved(commands)
    if not quick:  # the smoke run measures the peak once, to stay under 3 minutes
        peaks.append(measure_peak(size))
    cpu = cpu_name()
    print(machine_line(cpu, quick, size, peaks))
    print(table(runs, max(p["float32"] for p in peaks)))
    for line in ratios(runs):
        print(line)
    if save:
        save.write_text(json.dumps({"cpu": cpu, "peaks": peaks, "runs": runs}, indent=1))


def work(task: str, epochs: int, size: int) -> dict:
    """One worker's task: 'peak', 'check' or a training ('peer', 'ours-peer', 'ours')."""
    if task == "peak":
        return peak_gflops(size)
    if task == "check":
        from bench.architecture import peer_model_differences  # imports TensorFlow

        return {"differences": peer_model_differences()}
    return train_run(task, epochs)


def command(task: str, epochs: int = 0, size: int = 0) -> list[str]:
    """The worker process for a task: a fresh interpreter, so no run inherits another's
    TensorFlow state."""
    args = ["--task", task, "--epochs", str(epochs), "--size", str(size)]
    return [sys.executable, "-m", "bench.run", *args]


def torch_command(epochs: int, seed: int) -> list[str]:
    """The PyTorch script's worker process, under .venv-torch's Python (no TensorFlow, no
    DVC there: bench/training_torch.py imports neither)."""
    args = ["--data", str(PREPARED), "--epochs", str(epochs), "--seed", str(seed)]
    return [str(TORCH_PYTHON), "-m", "bench.training_torch", *args]


def measure_peak(size: int) -> dict[str, float]:
    """peak_gflops() in a fresh worker process, with the machine to itself."""
    return interleaved({"peak": command("peak", size=size)})["peak"]


def check_same_model() -> None:
    """UserError, one line, unless ours at the peer's settings builds the peer's model.

    In a worker process: building a Keras model imports TensorFlow, which the parent
    never does."""
    differences = interleaved({"check": command("check")})["check"]["differences"]
    if differences:
        raise UserError(
            "ours at the peer's settings is not the peer's model (bench/settings.py against "
            f"bench/peer.py): {'; '.join(differences)}"
        )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs per run (< 3 minutes)")
    parser.add_argument(
        "--save", type=Path, help="also write every run's per-epoch seconds and accuracy as JSON"
    )
    parser.add_argument(
        "--torch", action="store_true", help="also the plain PyTorch script (.venv-torch)"
    )
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    cli(main)
