"""`make bench`: the plain Keras peer against our train stage, side by side, on this machine.

Each run is a fresh process on the same prepared data (data/prepared): the peer script,
our train stage at the peer's exact settings, and our train stage with params.yaml. The
three run side by side but never at once: they take turns, one epoch each, so a machine
that slows down for a few minutes slows all three alike (see interleaved). The matmul
peak is measured with TensorFlow itself before and after them (before only with --quick).
Printed: median seconds per epoch, samples/s, GFLOP/s and its share of the float32 peak,
test accuracy of the final model, time to 99.0% test accuracy (scored after each epoch,
outside the timed part; only here: the stage itself selects on the validation split) and
ratios to the peer.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path("data/prepared")
TARGET = 0.99
PEER_EPOCHS = 15
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
TURN = "@@ bench: turn passed"
TURNS = "BENCH_TAKE_TURNS"  # set for the workers of interleaved()


def flops_per_epoch(cell: str, units: int, layers: int, bidirectional: bool, n: int) -> float:
    """Matmul FLOPs of one training epoch: forward + backward (about 3x the forward)."""
    steps = width = 28
    directions = 2 if bidirectional else 1
    forward = 0
    for _ in range(layers):
        forward += directions * steps * 2 * GATES[cell] * units * (width + units)
        width = units * directions
    forward += 2 * width * 10
    return 3.0 * forward * n


def peak_gflops(size: int) -> dict[str, float]:
    """Best of 10 timed size x size matmuls through TensorFlow, float32 and bfloat16.

    4096 is the machine's peak; --quick takes 1024, a smoke test of the machinery (at 4096
    the measurement alone takes 50 s on a CPU without native bfloat16)."""
    import tensorflow as tf

    result = {}
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.random.normal((size, size), dtype=tf.float32)
        a = tf.cast(a, dtype)
        tf.linalg.matmul(a, a).numpy()
        best = float("inf")
        for _ in range(10):
            start = time.perf_counter()
            tf.linalg.matmul(a, a).numpy()
            best = min(best, time.perf_counter() - start)
        result[dtype.name] = 2 * size**3 / best / 1e9
    return result


def take_turn() -> None:
    """In a worker: block until the parent gives this worker the machine (a line on stdin).

    Outside interleaved() (train_run called on its own) there is no one to wait for.
    """
    if os.environ.get(TURNS) and not sys.stdin.readline():
        sys.exit("error: the bench parent went away")


def pass_turn() -> None:
    """In a worker: hand the machine to the next worker, then wait for the next turn."""
    if os.environ.get(TURNS):
        print(TURN, flush=True)
        take_turn()


def train_run(kind: str, epochs: int) -> dict:
    """One training in this process: the peer, or our stage ('ours' or 'ours-peer').

    Under interleaved(), it starts on its first turn (importing TensorFlow is work too)
    and passes the turn after each epoch, once that epoch is timed and scored.
    """
    take_turn()
    import keras
    import numpy as np

    x_test = np.load(DATA / "test/x.npy", allow_pickle=False)
    y_test = np.load(DATA / "test/y.npy", allow_pickle=False)
    seconds: list[float] = []
    accuracy: list[float] = []

    def on_epoch(model: keras.Model, elapsed: float) -> None:
        seconds.append(elapsed)
        predicted = model.predict(x_test, batch_size=1000, verbose=0).argmax(axis=1)
        accuracy.append(float((predicted == y_test).mean()))
        pass_turn()

    if kind == "peer":
        from bench.peer import train

        model = train(DATA, epochs, on_epoch)
        shape = ("lstm", 128, 1, False)
    else:
        from stages.params import load_params
        from stages.train import run

        params = load_params().train
        if kind == "ours-peer":
            params = dataclasses.replace(
                params,
                cell="lstm",
                units=128,
                layers=1,
                bidirectional=False,
                dropout=0.0,
                optimizer="adam",
                learning_rate=1e-3,
                lr_schedule="constant",
                warmup_epochs=0,
                clipnorm=0.0,
                augment_shift=0,
                batch_size=128,
                jit_compile=False,
                patience=PEER_EPOCHS,
            )
        params = dataclasses.replace(params, epochs=epochs)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            run(params, DATA, out / "m.keras", out / "logs", out / "t.json", out / "ck", on_epoch)
            model = keras.saving.load_model(out / "m.keras", safe_mode=True)
        shape = (params.cell, params.units, params.layers, params.bidirectional)
    predicted = model.predict(x_test, batch_size=1000, verbose=0).argmax(axis=1)
    n = len(np.load(DATA / "train/y.npy", allow_pickle=False))
    return {
        "seconds": seconds,
        "accuracy": accuracy,
        "final": float((predicted == y_test).mean()),
        "flops": flops_per_epoch(*shape, n=n),
        "samples": n,
    }


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one (Linux), else what Python knows."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(names, platform.processor())


def command(task: str, epochs: int = 0, size: int = 0) -> list[str]:
    """The worker process for a task: a fresh interpreter, so no run inherits another's
    TensorFlow state."""
    args = ["--task", task, "--epochs", str(epochs), "--size", str(size)]
    return [sys.executable, "-m", "bench.run", *args]


def interleaved(commands: dict[str, list[str]]) -> dict[str, dict]:
    """Run the worker commands side by side, one at a time: each has the machine until it
    prints TURN (then it waits for a line on stdin), and the next one in order gets it.
    A worker is done when it exits; the last line it printed is its JSON result.
    """
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", TURNS: "1"}
    results: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        workers = {}
        for name, argv in commands.items():
            errors = stack.enter_context(tempfile.TemporaryFile("w+"))
            worker = stack.enter_context(
                subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                    env=env,
                )
            )
            stack.callback(worker.kill)  # runs first: a failed bench leaves no worker behind
            workers[name] = (worker, errors)
        while len(results) < len(workers):
            for name, (worker, errors) in workers.items():
                if name in results:
                    continue
                with contextlib.suppress(BrokenPipeError):  # it died: its exit code says why
                    os.write(worker.stdin.fileno(), b"go\n")  # unbuffered: nothing left to flush
                lines = []
                for line in iter(worker.stdout.readline, ""):
                    if line.rstrip("\n") == TURN:
                        break
                    lines.append(line)
                else:
                    if worker.wait():
                        errors.seek(0)
                        sys.exit(
                            f"error: bench task {name} failed:\n{''.join(lines)}{errors.read()}"
                        )
                    results[name] = json.loads(lines[-1])
    return results


def measure_peak(size: int) -> dict[str, float]:
    """peak_gflops() in a fresh worker process, with the machine to itself."""
    return interleaved({"peak": command("peak", size=size)})["peak"]


def time_to_target(run: dict) -> float | None:
    elapsed = 0.0
    for seconds, accuracy in zip(run["seconds"], run["accuracy"], strict=True):
        elapsed += seconds
        if accuracy >= TARGET:
            return elapsed
    return None


def table(runs: dict[str, dict], peak: float) -> str:
    names = {
        "peer": "peer: plain Keras script",
        "ours-peer": "ours at the peer's settings",
        "ours": "ours, params.yaml",
    }
    lines = [
        "| run | epochs | median s/epoch | samples/s | GFLOP/s | % of f32 peak "
        "| test accuracy | time to 99.0% | training time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, run in runs.items():
        median = statistics.median(run["seconds"])
        gflops = run["flops"] / median / 1e9
        reached = time_to_target(run)
        lines.append(
            f"| {names[key]} | {len(run['seconds'])} | {median:.2f} "
            f"| {run['samples'] / median:,.0f} | {gflops:.0f} | {100 * gflops / peak:.0f}% "
            f"| {100 * run['final']:.2f}% "
            f"| {'not reached' if reached is None else f'{reached:.0f} s'} "
            f"| {sum(run['seconds']):.0f} s |"
        )
    return "\n".join(lines)


def ratios(runs: dict[str, dict]) -> list[str]:
    peer, ours, same = runs["peer"], runs["ours"], runs["ours-peer"]
    peer_time = sum(peer["seconds"])
    lines = [
        "ours at the peer's settings, speed (peer median s/epoch / ours): "
        f"{statistics.median(peer['seconds']) / statistics.median(same['seconds']):.2f}",
        f"ours (params.yaml) training time / peer's: {sum(ours['seconds']) / peer_time:.2f}",
        f"test accuracy, ours - peer: {100 * (ours['final'] - peer['final']):+.2f} points",
    ]
    reached = time_to_target(ours)
    if reached is not None:
        lines.append(f"ours: time to 99.0% / peer's training time: {reached / peer_time:.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs per run (< 3 minutes)")
    parser.add_argument(
        "--save", type=Path, help="also write every run's per-epoch seconds and accuracy as JSON"
    )
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task == "peak":
        print(json.dumps(peak_gflops(args.size)))
        return
    if args.task:
        print(json.dumps(train_run(args.task, args.epochs)))
        return
    if not (DATA / "train/x.npy").exists():
        sys.exit("error: no data/prepared: run `dvc repro prepare` first (make bench does)")
    from stages.params import load_params

    ours_epochs = 2 if args.quick else load_params().train.epochs
    peer_epochs = 2 if args.quick else PEER_EPOCHS
    size = 1024 if args.quick else 4096
    before = measure_peak(size)
    runs = interleaved(
        {
            "peer": command("peer", peer_epochs),
            "ours-peer": command("ours-peer", peer_epochs),
            "ours": command("ours", ours_epochs),
        }
    )
    peaks = [before]
    if not args.quick:  # the smoke run measures the peak once, to stay under 3 minutes
        peaks.append(measure_peak(size))
    peak = max(p["float32"] for p in peaks)
    cpu = cpu_name()
    print(
        f"machine: {cpu}, {os.cpu_count()} cores; {'quick mode, ' if args.quick else ''}"
        f"matmul peak (TensorFlow, {size}x{size}): float32 {peak:.0f} GFLOP/s, "
        f"bfloat16 {max(p['bfloat16'] for p in peaks):.0f} GFLOP/s"
    )
    print(table(runs, peak))
    for line in ratios(runs):
        print(line)
    if args.save:
        args.save.write_text(json.dumps({"cpu": cpu, "peaks": peaks, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
