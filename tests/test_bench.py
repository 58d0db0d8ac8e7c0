"""make bench's machinery: workers take turns, the FLOP count and the floor's matmul chains
are read off the model, ours at the peer's settings is checked against the peer's model, and
the quick bench prints its table; the plain PyTorch script (make bench TORCH=1) has its own
hash-pinned environment, joins the turns and gets its rows and bar.
"""

import ast
import dataclasses
import io
import json
import re
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
from bench.lstm_flops import lstm_classifier_flops
from bench.report import ratios, table
from bench.run import TORCH_PYTHON, bench, check_same_model
from bench.settings import PEER_SETTINGS, at_peer_settings
from rowlstm.errors import UserError
from rowlstm.model import build_model
from rowlstm.params import PrepareParams, TrainParams, load_params
from rowlstm.paths import PreparePaths
from stages.prepare import run as prepare
from tests.helpers import ROOT, imported_files, third_party_imports, write_mirror

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


def run(seconds: list[float], accuracy: list[float], floor: float | None = 6.0) -> dict:
    """A worker's result as the report reads it."""
    return {
        "seconds": seconds,
        "accuracy": accuracy,
        "final": accuracy[-1],
        "flops": 1.2e12,
        "samples": 60_000,
        "floor": floor,
    }


def test_the_table_and_ratios_read_medians_and_the_time_to_99() -> None:
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


def test_the_pytorch_script_gets_its_row_and_its_bar() -> None:
    runs = {
        "peer": run([10.0, 30.0, 12.0], [0.9, 0.98, 0.985]),
        "peer-torch": run([5.0, 6.0, 7.0], [0.95, 0.97, 0.98], floor=None),
        "ours-peer": run([8.0, 8.0, 8.0], [0.9, 0.98, 0.99]),
        "ours": run([6.0, 6.0], [0.991, 0.995], 4.0),
    }
    assert table(runs, peak=200.0).splitlines()[3] == (
        "| peer: plain PyTorch script | 3 | 6.00 | n/a | n/a | 10,000 | 200 | 100% | 98.00% "
        "| not reached | 18 s |"
    )
    assert ratios(runs)[-2:] == [
        "ours at the peer's settings, speed against the PyTorch script (its median s/epoch / "
        "ours): 0.75 (reported, no bar)",
        "ours (params.yaml): time to the PyTorch script's final test accuracy (98.00%) / "
        "PyTorch script's training time: 0.33 (bar < 1: met)",
    ]
    # A script that ends above ours' first epoch: ours takes 12 s to its 3 s.
    fast = {**runs, "peer-torch": run([1.0, 1.0, 1.0], [0.95, 0.97, 0.993], floor=None)}
    assert ratios(fast)[-1] == (
        "ours (params.yaml): time to the PyTorch script's final test accuracy (99.30%) / "
        "PyTorch script's training time: 4.00 (bar < 1: MISSED)"
    )
    beyond = {**runs, "peer-torch": run([5.0], [0.999], floor=None)}
    assert ratios(beyond)[-1].endswith("training time: never reached (bar < 1: MISSED)")
    without = {key: value for key, value in runs.items() if key != "peer-torch"}
    assert "PyTorch" not in "\n".join([table(without, 200.0), *ratios(without)])


@pytest.fixture
def bench_folder(tmp_path, monkeypatch) -> dict[str, list[str]]:
    """A folder to run bench() in, every worker faked: the commands it was given, by name."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "params.yaml", tmp_path)
    (tmp_path / "data/prepared/train").mkdir(parents=True)
    (tmp_path / "data/prepared/train/x.npy").touch()
    commands: dict[str, list[str]] = {}

    def workers(given: dict[str, list[str]]) -> dict[str, dict]:
        commands.update(given)
        return {name: run([2.0, 2.0], [0.98, 0.99]) for name in given}

    monkeypatch.setattr("bench.run.interleaved", workers)
    monkeypatch.setattr("bench.run.check_same_model", lambda: None)
    monkeypatch.setattr("bench.run.measure_peak", lambda size: {"float32": 1.0, "bfloat16": 2.0})
    return commands


def test_with_torch_the_script_takes_its_turn_after_the_peer_and_is_saved(
    bench_folder: dict[str, list[str]], tmp_path, monkeypatch, capsys
) -> None:
    python = tmp_path / "venv-torch-python"
    python.touch()
    monkeypatch.setattr("bench.run.TORCH_PYTHON", python)
    bench(quick=True, save=tmp_path / "raw.json", torch=True)
    assert list(bench_folder) == ["peer", "peer-torch", "ours-peer", "ours"]
    seed = str(load_params(tmp_path / "params.yaml").train.seed)
    assert bench_folder["peer-torch"] == [
        str(python),
        *("-m", "bench.training_torch", "--data", "data/prepared"),
        *("--epochs", "2", "--seed", seed),
    ]
    assert "| peer: plain PyTorch script | 2 |" in capsys.readouterr().out
    saved = json.loads((tmp_path / "raw.json").read_text())["runs"]
    assert list(saved) == ["peer", "peer-torch", "ours-peer", "ours"]


def test_without_torch_the_bench_runs_as_before(bench_folder: dict[str, list[str]]) -> None:
    bench(quick=True, save=None)
    assert list(bench_folder) == ["peer", "ours-peer", "ours"]


def test_torch_without_its_environment_says_how_to_build_it(
    bench_folder: dict[str, list[str]], tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr("bench.run.TORCH_PYTHON", tmp_path / "no-such-venv/bin/python")
    with pytest.raises(UserError) as error:
        bench(quick=True, save=None, torch=True)
    assert str(error.value).splitlines() == [
        "no .venv-torch, the PyTorch script's environment: `make bench TORCH=1` builds it "
        "(from requirements-torch.lock) and runs the bench"
    ]
    assert bench_folder == {}  # stopped before anything ran


def pins(lock: str) -> dict[str, str]:
    """A lock file's requirements, name to the whole entry (its hashes on one line)."""
    text = (ROOT / lock).read_text().replace("\\\n", " ")
    entries = [line for line in text.splitlines() if line and not line.startswith(("#", " ", "-"))]
    return {entry.split("==")[0]: " ".join(entry.split()) for entry in entries}


def test_the_pytorch_lock_is_hash_pinned_and_apart_from_the_main_lock() -> None:
    torch_lock = pins("requirements-torch.lock")
    for entry in torch_lock.values():
        assert re.fullmatch(r"\S+==\S+( --hash=sha256:[0-9a-f]{64})+", entry), entry
    assert torch_lock["torch"].startswith("torch==2.13.0+cpu ")  # no CUDA, no nvidia-* wheels
    assert not [name for name in torch_lock if name.startswith(("nvidia", "tensorflow", "dvc"))]
    assert torch_lock["numpy"] == pins("requirements.lock")["numpy"]  # same version, same hashes
    for lock in ("requirements.lock", "requirements-gpu.lock"):
        assert "torch" not in pins(lock), lock


TORCH_WORKER = {
    "bench/training_torch.py",
    "bench/peer_torch.py",
    "bench/interleave.py",
    "bench/lstm_flops.py",
}


def test_the_pytorch_worker_imports_only_what_its_lock_holds() -> None:
    """.venv-torch has torch and numpy alone: no TensorFlow, no yaml, no library module."""
    for path in TORCH_WORKER:
        assert imported_files(f"bench.{Path(path).stem}") == {path}  # nothing of rowlstm/...
        tree = ast.parse((ROOT / path).read_text())
        ours = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} - {None}
        ours = {name for name in ours if name.startswith("bench.")}
        assert {f"{name.replace('.', '/')}.py" for name in ours} <= TORCH_WORKER, path
    assert third_party_imports(TORCH_WORKER) == {"bench", "numpy", "torch"}
    assert {"numpy", "torch"} <= pins("requirements-torch.lock").keys()


def test_the_pytorch_peers_flops_by_formula_equal_the_count_on_the_keras_model() -> None:
    by_formula = lstm_classifier_flops(28, 28, 128, 10)
    assert 55_000 * by_formula == flops_per_epoch(peer.build_model(), 55_000)
    # No two sizes alike, so that no argument can stand in for another.
    model = keras.Sequential(
        [keras.Input(shape=(5, 4)), keras.layers.LSTM(7), keras.layers.Dense(3)]
    )
    assert lstm_classifier_flops(5, 4, 7, 3) == flops_per_epoch(model, 1)


@pytest.mark.skipif(not TORCH_PYTHON.exists(), reason="no .venv-torch (make bench TORCH=1)")
def test_the_pytorch_script_trains_in_its_own_environment_repeatably(tmp_path) -> None:
    paths = PreparePaths(raw=tmp_path / "raw").under(tmp_path)
    write_mirror(paths.raw, n_train=600, n_test=100, gz=False)
    prepare(PrepareParams(50, 0, 3), paths)

    def worker() -> dict:
        args = ["--data", str(paths.prepared), "--epochs", "3", "--seed", "7"]
        command = [str(TORCH_PYTHON), "-m", "bench.training_torch", *args]
        result = subprocess.run(
            command, cwd=ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.splitlines()[-1])

    first = worker()
    assert len(first["seconds"]) == len(first["accuracy"]) == len(first["validation"]) == 3
    assert first["final"] == first["accuracy"][-1] > 0.3  # it learns: chance is 0.1
    assert first["samples"] == 550 and first["floor"] is None and first["threads"] >= 1
    assert first["flops"] == 550 * lstm_classifier_flops(28, 28, 128, 10)
    second = worker()
    assert (second["accuracy"], second["validation"]) == (first["accuracy"], first["validation"])


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
