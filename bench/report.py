"""What `make bench` prints: the machine, a Markdown table of the runs, and ratios.

Medians per epoch, because some epochs on these shared machines take twice as long; ratios
to the peer, because only runs measured side by side in one bench compare (docs/performance.md).
"""

import os
import platform
import statistics
from pathlib import Path

TARGET = 0.99
# The bars (docs/performance.md): ours at the peer's own settings keeps within 5% of its
# speed (our overhead: checkpoint, per-epoch fit), and the default reaches the peer's final
# accuracy in under 0.3 of the peer's training time; and in less time than the plain PyTorch
# script trains (issue 35), when the bench runs it (make bench TORCH=1).
SPEED_BAR, CATCH_UP_BAR, TORCH_CATCH_UP_BAR = 0.95, 0.3, 1.0
NAMES = {
    "peer": "peer: plain Keras script",
    "peer-torch": "peer: plain PyTorch script",
    "ours-peer": "ours at the peer's settings",
    "ours": "ours, params.yaml",
}


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one (Linux), else what Python knows."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(names, platform.processor())


def machine_line(cpu: str, quick: bool, size: int, peaks: list[dict[str, float]]) -> str:
    """The first line: the machine and its best measured matmul peaks."""
    return (
        f"machine: {cpu}, {os.cpu_count()} cores; {'quick mode, ' if quick else ''}"
        f"matmul peak (TensorFlow, {size}x{size}): "
        f"float32 {max(p['float32'] for p in peaks):.0f} GFLOP/s, "
        f"bfloat16 {max(p['bfloat16'] for p in peaks):.0f} GFLOP/s"
    )


def time_to_target(run: dict, target: float = TARGET) -> float | None:
    """Training seconds until the test accuracy first reached target; None if it never did."""
    elapsed = 0.0
    for seconds, accuracy in zip(run["seconds"], run["accuracy"], strict=True):
        elapsed += seconds
        if accuracy >= target:
            return elapsed
    return None


def table(runs: dict[str, dict], peak: float) -> str:
    """One Markdown row per run: its median epoch against its floor (bench/floor.py), and
    GFLOP/s read against the float32 `peak`."""
    lines = [
        "| run | epochs | median s/epoch | floor s/epoch | x floor | samples/s | GFLOP/s "
        "| % of f32 peak | test accuracy | time to 99.0% | training time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + [_row(NAMES[key], run, peak) for key, run in runs.items()])


def _row(name: str, run: dict, peak: float) -> str:
    """A run's row; its floor "n/a" where none was measured (the PyTorch script's: the
    floor is TensorFlow's matmul chain)."""
    median = statistics.median(run["seconds"])
    gflops = run["flops"] / median / 1e9
    reached = time_to_target(run)
    floor = run["floor"]
    return (
        f"| {name} | {len(run['seconds'])} | {median:.2f} "
        f"| {'n/a | n/a' if floor is None else f'{floor:.2f} | {median / floor:.2f}'} "
        f"| {run['samples'] / median:,.0f} | {gflops:.0f} | {100 * gflops / peak:.0f}% "
        f"| {100 * run['final']:.2f}% "
        f"| {'not reached' if reached is None else f'{reached:.0f} s'} "
        f"| {sum(run['seconds']):.0f} s |"
    )


def ratios(runs: dict[str, dict]) -> list[str]:
    """The lines under the table: ours against the peer, at its settings and at ours, each
    with its bar (docs/performance.md) where it has one; then against the PyTorch script,
    where the bench ran it."""
    peer, ours, same = runs["peer"], runs["ours"], runs["ours-peer"]
    peer_time = sum(peer["seconds"])
    speed = statistics.median(peer["seconds"]) / statistics.median(same["seconds"])
    training = sum(ours["seconds"]) / peer_time
    caught_up, catch_up = _catch_up(ours, peer)
    in_time = caught_up is not None and caught_up <= CATCH_UP_BAR * peer_time
    lines = [
        "ours at the peer's settings, speed (peer median s/epoch / ours): "
        f"{speed:.2f} {bar(speed >= SPEED_BAR, f'>= {SPEED_BAR}')}",
        f"ours (params.yaml) training time / peer's: {training:.2f} {bar(training <= 1, '<= 1')}",
        f"ours (params.yaml): time to the peer's final test accuracy ({peer['final']:.2%}) / "
        f"peer's training time: {catch_up} {bar(in_time, f'<= {CATCH_UP_BAR}')}",
        f"ours (params.yaml) median epoch / its floor: "
        f"{statistics.median(ours['seconds']) / ours['floor']:.2f} (reported, no bar)",
        f"test accuracy, ours - peer: {100 * (ours['final'] - peer['final']):+.2f} points",
    ]
    reached = time_to_target(ours)
    if reached is not None:
        lines.append(f"ours: time to 99.0% / peer's training time: {reached / peer_time:.2f}")
    if "peer-torch" in runs:
        lines += _against_torch(runs["peer-torch"], same, ours)
    return lines


def _against_torch(script: dict, same: dict, ours: dict) -> list[str]:
    """Ours against the plain PyTorch script: speed at the peers' settings (reported: a
    different framework's LSTM), and the bar of issue 35, ours reaching the script's final
    test accuracy in less time than the script trains."""
    speed = statistics.median(script["seconds"]) / statistics.median(same["seconds"])
    caught_up, catch_up = _catch_up(ours, script)
    in_time = caught_up is not None and caught_up < TORCH_CATCH_UP_BAR * sum(script["seconds"])
    return [
        "ours at the peer's settings, speed against the PyTorch script (its median s/epoch / "
        f"ours): {speed:.2f} (reported, no bar)",
        "ours (params.yaml): time to the PyTorch script's final test accuracy "
        f"({script['final']:.2%}) / PyTorch script's training time: {catch_up} "
        f"{bar(in_time, f'< {TORCH_CATCH_UP_BAR:g}')}",
    ]


def _catch_up(ours: dict, peer: dict) -> tuple[float | None, str]:
    """Ours' seconds to the peer's final test accuracy (None: never), and that over the
    peer's training time as the lines print it."""
    caught_up = time_to_target(ours, peer["final"])
    if caught_up is None:
        return None, "never reached"
    return caught_up, f"{caught_up / sum(peer['seconds']):.2f}"


def bar(met: bool, limit: str) -> str:
    return f"(bar {limit}: {'met' if met else 'MISSED'})"
