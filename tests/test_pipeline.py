"""End to end: the real `dvc repro` on a temp copy of the repo with a tiny synthetic mirror."""

import json
from pathlib import Path

from tests.e2e import ran, set_params, sh, stale


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


def test_a_bad_param_is_one_line_on_stderr_before_anything_runs(repo: Path) -> None:
    original = (repo / "params.yaml").read_text()
    try:
        set_params(repo, {"train": {"units": -3}})
        result = sh(repo, "python", "-m", "stages.train", check=False)
    finally:
        (repo / "params.yaml").write_text(original)
    assert result.returncode == 1
    assert result.stderr == "error: params.yaml: train.units must be >= 1, got -3\n"
