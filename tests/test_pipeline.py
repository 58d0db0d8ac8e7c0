"""End to end: the real `dvc repro` on a temp copy of the repo with a tiny synthetic mirror."""

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import write_mirror, write_pins

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COPIED = ["stages", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", ".gitattributes"]
TINY = {
    "prepare": {"val_size": 50},
    "train": {"units": 24, "epochs": 6, "batch_size": 25, "learning_rate": 5.0e-3},
}


def sh(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env["MNIST_MIRROR"] = str(repo.parent / "mirror")
    result = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)
    if check and result.returncode:
        pytest.fail(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def set_params(repo: Path, changes: dict) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def ran(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def stale(repo: Path) -> set[str]:
    return set(json.loads(sh(repo, "dvc", "status", "--json").stdout))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git+DVC copy of this repo, reproduced once on tiny data and committed."""
    base = tmp_path_factory.mktemp("e2e")
    repo = base / "repo"
    repo.mkdir()
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, repo / name)
    (repo / ".dvc").mkdir()
    shutil.copy2(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    write_pins(repo / "stages" / "mnist.json", write_mirror(base / "mirror"))
    set_params(repo, TINY)
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy")
    first = sh(repo, "dvc", "repro")
    assert ran(first.stdout) == ["download", "prepare", "train", "evaluate"]
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run")
    return repo


def test_first_run_writes_every_output(repo: Path) -> None:
    assert sorted(p.name for p in (repo / "data/raw").iterdir()) == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ]
    data = json.loads((repo / "reports/data.json").read_text())
    assert {k: v["size"] for k, v in data.items()} == {"train": 350, "val": 50, "test": 200}
    assert (repo / "models/model.keras").stat().st_size > 10_000
    metrics = json.loads((repo / "reports/metrics.json").read_text())["test"]
    assert metrics["accuracy"] >= 0.9
    assert metrics["errors"] == round((1 - metrics["accuracy"]) * 200)
    assert (repo / "reports/train/plots/metrics/eval/accuracy.tsv").exists()
    tracked = sh(repo, "git", "ls-files", "reports").stdout.split()
    assert {"reports/metrics.json", "reports/data.json", "reports/classes.csv"} <= set(tracked)
    assert "models/model.keras" not in sh(repo, "git", "ls-files").stdout


def test_nothing_changed_nothing_runs(repo: Path) -> None:
    assert stale(repo) == set()
    again = sh(repo, "dvc", "repro")
    assert ran(again.stdout) == []
    assert "Data and pipelines are up to date" in again.stdout


def test_metrics_show_reads_the_flat_metrics_file(repo: Path) -> None:
    shown = json.loads(sh(repo, "dvc", "metrics", "show", "--json").stdout)
    values = shown[""]["data"]["reports/metrics.json"]["data"]["test"]
    assert set(values) == {"accuracy", "loss", "macro_f1", "errors"}


@pytest.fixture
def restore(repo: Path) -> Iterator[Path]:
    """Put the committed run back after a test: git for params and lock, DVC for outputs."""
    yield repo
    sh(repo, "git", "checkout", "--", ".")
    sh(repo, "dvc", "checkout", "--force")
    assert stale(repo) == set()


@pytest.mark.parametrize(
    ("change", "first", "reruns"),
    [
        ({"prepare": {"val_size": 60}}, "prepare", ["prepare", "train", "evaluate"]),
        ({"train": {"epochs": 7}}, "train", ["train", "evaluate"]),
        ({"evaluate": {"batch_size": 7}}, "evaluate", ["evaluate"]),
        # Same verified files from a changed param: nothing downstream reruns.
        ({"download": {"timeout": 9.0}}, "download", ["download"]),
    ],
)
def test_a_params_edit_reruns_only_the_stages_it_affects(restore, change, first, reruns) -> None:
    repo = restore
    set_params(repo, change)
    assert stale(repo) == {first}
    assert ran(sh(repo, "dvc", "repro").stdout) == reruns
    assert stale(repo) == set()


def test_editing_model_code_reruns_train_only_when_the_model_is_unchanged(restore) -> None:
    repo = restore
    path = repo / "stages" / "model.py"
    path.write_text(path.read_text() + "\nUNUSED = 1\n")
    assert stale(repo) == {"train"}
    # Deterministic training saves the same bytes, so evaluate has nothing new to score.
    assert ran(sh(repo, "dvc", "repro").stdout) == ["train"]


def test_metrics_and_params_diff_against_the_committed_run(restore) -> None:
    repo = restore
    set_params(repo, {"train": {"epochs": 7}})
    sh(repo, "dvc", "repro")
    diff = json.loads(sh(repo, "dvc", "metrics", "diff", "--json").stdout)
    assert "test.loss" in diff["reports/metrics.json"]
    params_diff = json.loads(sh(repo, "dvc", "params", "diff", "--json").stdout)
    assert params_diff["params.yaml"]["train.epochs"]["old"] == 6
    assert params_diff["params.yaml"]["train.epochs"]["new"] == 7


def test_a_bad_param_is_one_line_on_stderr_before_anything_runs(repo: Path) -> None:
    original = (repo / "params.yaml").read_text()
    try:
        set_params(repo, {"train": {"units": -3}})
        result = sh(repo, "python", "-m", "stages.train", check=False)
    finally:
        (repo / "params.yaml").write_text(original)
    assert result.returncode == 1
    assert result.stderr == "error: params.yaml: train.units must be >= 1, got -3\n"
