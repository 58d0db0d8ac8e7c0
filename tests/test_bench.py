"""make bench's machinery: workers take turns, the FLOP count and the floor's matmul chains
are read off the model, ours at the peer's settings is checked against the peer's model, and
the quick bench prints its table.
"""

import dataclasses
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from bench import peer
from bench.architecture import peer_model_differences
from bench.floor import chain, recurrent_chains
from bench.flops import flops_per_epoch
from bench.interleave import TURNS, interleaved, pass_turn, take_turn
from bench.report import ratios, table
from bench.run import check_same_model
from bench.settings import PEER_SETTINGS, at_peer_settings
from rowlstm.errors import UserError
from rowlstm.model import build_model
from rowlstm.params import PrepareParams, TrainParams, load_params
from rowlstm.paths import PreparePaths
from stages.prepare import run as prepare
from tests.helpers import ROOT, write_mirror

FAKE = """
import json, sys, time
from bench.interleave import pass_turn, take_turn
name, epochs, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
take_turn()
for epoch in range(epochs):
    with open(log, "a") as out:
        out.write(f"{name}{epoch} ")
    time.sleep(0.05)
    with open(log, "a") as out:
        out.write(f"{name}{epoch}. ")
    pass_turn()
if name == "bad":
    sys.exit("it broke")
print("a last line that is not the result")
print(json.dumps({"name": name, "epochs": epochs}))
"""


def fake(name: str, epochs: int, log: Path) -> list[str]:
    return [sys.executable, "-c", FAKE, name, str(epochs), str(log)]


def test_workers_take_turns_one_epoch_each_and_never_overlap(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    log = tmp_path / "log"
    results = interleaved({"a": fake("a", 2, log), "b": fake("b", 3, log), "c": fake("c", 1, log)})
    assert results == {
        "a": {"name": "a", "epochs": 2},
        "b": {"name": "b", "epochs": 3},
        "c": {"name": "c", "epochs": 1},
    }
    # Each epoch ends before the next one starts, in round-robin order.
    assert log.read_text().split() == [
        "a0",
        "a0.",
        "b0",
        "b0.",
        "c0",
        "c0.",
        "a1",
        "a1.",
        "b1",
        "b1.",
        "b2",
        "b2.",
    ]


def test_a_failing_worker_stops_the_bench_with_its_error(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    log = tmp_path / "log"
    with pytest.raises(SystemExit, match=r"(?s)bench task bad failed:.*it broke"):
        interleaved({"good": fake("good", 5, log), "bad": fake("bad", 1, log)})
    assert log.read_text().split() == ["good0", "good0.", "bad0", "bad0.", "good1", "good1."]


def test_outside_the_bench_a_worker_waits_for_no_one(monkeypatch) -> None:
    monkeypatch.delenv(TURNS, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # would end a waiting worker
    take_turn()
    pass_turn()


def hand_count(cell: str, units: int, layers: int, bidirectional: bool, samples: int) -> float:
    """The bench's former formula over params, kept here as an independent count: matmul
    FLOPs of an epoch (3x the forward) of our model on 28 rows of 28 pixels."""
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[cell]
    directions = 2 if bidirectional else 1
    width, forward = 28, 0
    for _ in range(layers):
        forward += directions * 28 * 2 * gates * units * (width + units)
        width = units * directions
    return 3.0 * samples * (forward + 2 * width * 10)


def train_params(**changes: object) -> TrainParams:
    return dataclasses.replace(load_params(ROOT / "params.yaml").train, **changes)


def test_the_peers_lstm_128_is_074_tflop_per_epoch_of_55000_images() -> None:
    flops = flops_per_epoch(peer.build_model(), 55_000)
    # Per image: 28 steps of (28 + 128) x 512 weights, then 128 x 10; x 2 per multiply-add.
    assert flops == 3 * 55_000 * (28 * 2 * (28 + 128) * 512 + 2 * 128 * 10)
    assert round(flops / 1e12, 2) == 0.74


@pytest.mark.parametrize(
    ("cell", "layers", "bidirectional"),
    [
        ("lstm", 1, False),
        ("gru", 1, False),
        ("simple_rnn", 1, False),
        ("lstm", 3, False),
        ("lstm", 1, True),
        ("gru", 2, True),
        ("simple_rnn", 2, True),
    ],
)
def test_our_models_flops_follow_cell_depth_and_directions(
    cell: str, layers: int, bidirectional: bool
) -> None:
    # Dropout layers (train.dropout in params.yaml) are in the model and count nothing.
    params = train_params(cell=cell, units=6, layers=layers, bidirectional=bidirectional)
    model = build_model(params, steps_per_epoch=10)
    assert flops_per_epoch(model, 1000) == hand_count(cell, 6, layers, bidirectional, 1000)


def test_gates_and_directions_scale_the_recurrent_work() -> None:
    def recurrent(cell: str, bidirectional: bool = False) -> float:
        params = train_params(cell=cell, units=8, layers=1, bidirectional=bidirectional)
        dense = 3 * 2 * 8 * (2 if bidirectional else 1) * 10
        return flops_per_epoch(build_model(params, steps_per_epoch=10), 1) - dense

    lstm = recurrent("lstm")
    assert recurrent("gru") == 3 / 4 * lstm
    assert recurrent("simple_rnn") == 1 / 4 * lstm
    assert recurrent("lstm", bidirectional=True) == 2 * lstm


def test_a_conv1d_front_end_is_counted_and_shortens_the_sequence() -> None:
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Conv1D(8, 3),  # 26 steps of 8 channels, each a 3 x 28 dot product
            keras.layers.LSTM(4),
            keras.layers.Dense(10),
        ]
    )
    conv = 2 * (3 * 28) * (26 * 8)
    lstm = 26 * 2 * (8 + 4) * 4 * 4
    assert flops_per_epoch(model, 1) == 3 * (conv + lstm + 2 * 4 * 10)


def test_the_floor_reads_each_recurrent_chain_off_the_model() -> None:
    params = train_params(cell="gru", units=6, layers=2, bidirectional=True)
    chains = recurrent_chains(build_model(params, steps_per_epoch=10))
    # GRU: 3 gates; the second layer reads both directions' 6 units; each layer has two.
    assert chains == 2 * [(28, (28, 18), (6, 18))] + 2 * [(28, (12, 18), (6, 18))]


def test_the_floor_chain_is_the_forward_and_backward_matmuls_of_each_step() -> None:
    rng = np.random.default_rng(0)
    x, start = rng.normal(size=(5, 3, 4)), rng.normal(size=(3, 2))
    w, u = rng.normal(size=(4, 8)) / 3, rng.normal(size=(2, 8)) / 3
    h, d_w, d_u = start, np.zeros_like(w), np.zeros_like(u)
    for t in range(5):
        z = x[t] @ w + h @ u
        d_w, d_u = d_w + x[t].T @ z, d_u + h.T @ z
        d_x, h = z @ w.T, z @ u.T
    got = chain(*(tf.constant(a, tf.float32) for a in (x, start, w, u)))
    for value, expected in zip(got, (h, d_w, d_u, d_x), strict=True):
        np.testing.assert_allclose(value.numpy(), expected, rtol=1e-4)


def test_a_layer_it_cannot_count_stops_the_count() -> None:
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.LayerNormalization(name="norm"),
            keras.layers.LSTM(4),
            keras.layers.Dense(10),
        ]
    )
    with pytest.raises(ValueError, match=r"layer 'norm' \(LayerNormalization\)"):
        flops_per_epoch(model, 1)


def test_ours_at_the_peers_settings_keeps_only_epochs_and_seed_from_params() -> None:
    train = train_params(units=7, dropout=0.3, batch_size=64, epochs=3, seed=5)
    ours = at_peer_settings(train)
    assert dataclasses.asdict(ours) == PEER_SETTINGS | {"epochs": 3, "seed": 5}


def test_a_train_option_with_no_peer_setting_stops_the_bench() -> None:
    @dataclasses.dataclass(frozen=True)
    class WithFrontEnd(TrainParams):
        front_end: str = "conv1d"

    train = WithFrontEnd(**dataclasses.asdict(train_params()))
    with pytest.raises(UserError, match=r"no peer setting for train\.front_end"):
        at_peer_settings(train)


def test_a_peer_setting_for_a_removed_option_stops_the_bench(monkeypatch) -> None:
    monkeypatch.setitem(PEER_SETTINGS, "front_end", "none")
    with pytest.raises(UserError, match=r"train\.front_end, which params.yaml no longer has"):
        at_peer_settings(train_params())


def test_ours_at_the_peers_settings_builds_the_peers_model(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    assert peer_model_differences() == []


@pytest.mark.parametrize(
    ("key", "value", "difference"),
    [
        ("units", 64, "layer 1 (LSTM) units is 128 in the peer's, 64 in ours"),
        ("units", 64, "layer 1 (LSTM) parameters is 80384 in the peer's, 23808 in ours"),
        ("cell", "gru", "layers are LSTM, Dense in the peer's, GRU, Dense in ours"),
        ("dropout", 0.1, "layers are LSTM, Dense in the peer's, LSTM, Dropout, Dense in ours"),
        ("learning_rate", 2e-3, "compile optimizer.learning_rate is 0.0010000000474974513"),
        ("clipnorm", 1.0, "compile optimizer.clipnorm is None in the peer's, 1.0 in ours"),
        ("batch_size", 256, "batch size is 128 in the peer's, 256 in ours"),
    ],
)
def test_a_setting_that_differs_from_the_peer_is_named(
    monkeypatch, key: str, value: object, difference: str
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(PEER_SETTINGS, key, value)
    assert any(line.startswith(difference) for line in peer_model_differences())


def test_the_bench_stops_with_one_line_when_the_models_differ(monkeypatch) -> None:
    def check_worker(differences: list[str]) -> None:
        result = {"check": {"differences": differences}}
        monkeypatch.setattr("bench.run.interleaved", lambda commands: result)
        check_same_model()

    check_worker([])
    with pytest.raises(UserError) as error:
        check_worker(["layer 1 (LSTM) units is 128 in the peer's, 64 in ours", "batch size"])
    assert str(error.value).splitlines() == [
        "ours at the peer's settings is not the peer's model (bench/settings.py against "
        "bench/peer.py): layer 1 (LSTM) units is 128 in the peer's, 64 in ours; batch size"
    ]


def test_the_table_and_ratios_read_medians_and_the_time_to_99() -> None:
    def run(seconds: list[float], accuracy: list[float], floor: float) -> dict:
        return {
            "seconds": seconds,
            "accuracy": accuracy,
            "final": accuracy[-1],
            "flops": 1.2e12,
            "samples": 60_000,
            "floor": floor,
        }

    runs = {
        "peer": run([10.0, 30.0, 12.0], [0.9, 0.98, 0.985], 6.0),
        "ours-peer": run([8.0, 8.0, 8.0], [0.9, 0.98, 0.99], 6.0),
        "ours": run([6.0, 6.0], [0.991, 0.995], 4.0),
    }
    lines = table(runs, peak=200.0).splitlines()
    assert lines[2:] == [
        "| peer: plain Keras script | 3 | 12.00 | 6.00 | 2.00 | 5,000 | 100 | 50% | 98.50% "
        "| not reached | 52 s |",
        "| ours at the peer's settings | 3 | 8.00 | 6.00 | 1.33 | 7,500 | 150 | 75% | 99.00% "
        "| 24 s | 24 s |",
        "| ours, params.yaml | 2 | 6.00 | 4.00 | 1.50 | 10,000 | 200 | 100% | 99.50% | 6 s "
        "| 12 s |",
    ]
    assert ratios(runs) == [
        "ours at the peer's settings, speed (peer median s/epoch / ours): 1.50 (bar >= 0.95: met)",
        "ours (params.yaml) training time / peer's: 0.23 (bar <= 1: met)",
        "ours (params.yaml): time to the peer's final test accuracy (98.50%) / peer's "
        "training time: 0.12 (bar <= 0.3: met)",
        "ours (params.yaml) median epoch / its floor: 1.50 (reported, no bar)",
        "test accuracy, ours - peer: +1.00 points",
        "ours: time to 99.0% / peer's training time: 0.12",
    ]
    slow = {**runs, "ours-peer": run([16.0, 16.0], [0.9, 0.98], 6.0), "ours": runs["peer"]}
    assert ratios(slow)[:3] == [
        "ours at the peer's settings, speed (peer median s/epoch / ours): 0.75 "
        "(bar >= 0.95: MISSED)",
        "ours (params.yaml) training time / peer's: 1.00 (bar <= 1: met)",
        "ours (params.yaml): time to the peer's final test accuracy (98.50%) / peer's "
        "training time: 1.00 (bar <= 0.3: MISSED)",
    ]


@pytest.mark.slow  # three trainings and a matmul peak, each in its own process
def test_quick_bench_prints_the_table_for_all_three_runs(tmp_path) -> None:
    paths = PreparePaths(raw=tmp_path / "raw").under(tmp_path)
    write_mirror(paths.raw, gz=False)
    prepare(PrepareParams(50, 0, 3), paths)
    shutil.copy(ROOT / "params.yaml", tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--save", "raw.json"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("machine: ") and "quick mode" in lines[0]
    rows = [line for line in lines if line.startswith("| ") and "epochs" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| peer: plain Keras script",
        "| ours at the peer's settings",
        "| ours, params.yaml",
    ]
    assert all(row.split(" | ")[1] == "2" for row in rows)
    assert any(line.startswith("ours at the peer's settings, speed") for line in lines)
    raw = json.loads((tmp_path / "raw.json").read_text())
    assert sorted(raw["runs"]) == ["ours", "ours-peer", "peer"]
    assert all(len(run["seconds"]) == len(run["accuracy"]) == 2 for run in raw["runs"].values())
    assert all(run["floor"] > 0 for run in raw["runs"].values())
