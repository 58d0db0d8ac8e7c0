"""`python -m tools.seeds` (make seeds): its table's arithmetic, and on the e2e repo a run
of two seeds through DVC's real queue."""

import json
import time
from pathlib import Path

import pytest

from tests.e2e import experiments, sh
from tools.seeds import changes, markdown


def test_the_table_gives_each_seed_then_mean_sd_min_and_max() -> None:
    rows = [
        {"seed": 42, "test accuracy": 0.9925, "test errors": 75, "best val accuracy": 0.9922},
        {"seed": 1, "test accuracy": 0.9919, "test errors": 81, "best val accuracy": 0.9930},
        {"seed": 2, "test accuracy": 0.9922, "test errors": 78, "best val accuracy": 0.9914},
    ]
    assert markdown(rows, "default: params.yaml as it is").splitlines() == [
        "default: params.yaml as it is",
        "",
        "| seed | test accuracy | test errors | best val accuracy |",
        "|---|---|---|---|",
        "| 42 | 99.25% | 75 | 99.22% |",
        "| 1 | 99.19% | 81 | 99.30% |",
        "| 2 | 99.22% | 78 | 99.14% |",
        "| mean | 99.22% | 78.0 | 99.22% |",
        "| sd | 0.03% | 3.0 | 0.08% |",
        "| min | 99.19% | 75 | 99.14% |",
        "| max | 99.25% | 81 | 99.30% |",
    ]


def test_the_title_names_what_the_runs_change_seeds_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("train:\n  seed: 42\n  epochs: 20\n  units: 128\n")
    runs = {
        seed: {
            "params": {
                "params.yaml": {"data": {"train": {"seed": seed, "epochs": epochs, "units": 128}}}
            }
        }
        for seed, epochs in ((1, 17), (2, 17))
    }
    names = {1: "a", 2: "b"}
    found = {names[seed]: run for seed, run in runs.items()}
    assert changes(names, found) == "train.epochs=17"
    runs[2]["params"]["params.yaml"]["data"]["train"]["epochs"] = 20
    assert changes(names, found) == "train.epochs=17"  # what any of them changes
    runs[1]["params"]["params.yaml"]["data"]["train"]["epochs"] = 20
    assert changes(names, found) == "params.yaml as it is"


def test_seeds_runs_each_seed_once_through_the_queue_and_tables_their_metrics(
    restore: Path,
) -> None:
    """Seed 42 of params.yaml is the e2e repo's committed run, restored from the run-cache;
    seed 3 trains."""
    repo = restore
    args = ("python", "-m", "tools.seeds", "--name", "s", "--seeds", "42", "3")
    table = sh(repo, *args).stdout
    found = experiments(repo)
    accuracy = {
        seed: found[f"s-seed{seed}"]["metrics"]["reports/metrics.json"]["data"]["test"]["accuracy"]
        for seed in (42, 3)
    }
    committed = json.loads((repo / "reports/metrics.json").read_text())["test"]["accuracy"]
    assert accuracy[42] == committed
    seeds = [found[f"s-seed{s}"]["params"]["params.yaml"]["data"]["train"]["seed"] for s in (42, 3)]
    assert seeds == [42, 3]
    lines = table.splitlines()
    assert lines[0] == "s: params.yaml as it is"
    assert lines[4].startswith(f"| 42 | {accuracy[42]:.2%} |")
    assert lines[5].startswith(f"| 3 | {accuracy[3]:.2%} |")
    assert lines[6].startswith(f"| mean | {(accuracy[42] + accuracy[3]) / 2:.2%} |")
    deadline = time.monotonic() + 30  # and no worker is left behind, idling
    while "Worker status: 0 active, 0 idle" not in sh(repo, "dvc", "queue", "status").stdout:
        assert time.monotonic() < deadline, "the queue's worker was left running"
        time.sleep(1)
    again = sh(repo, *args, "--table")  # read, not run again
    assert again.stdout == table and "exp run" not in again.stderr
    missing = sh(repo, *args[:-2], "5", "6", "--table", check=False)
    assert missing.returncode == 1
    assert missing.stderr == "error: no experiment s-seed5, s-seed6 in `dvc exp show`\n"
