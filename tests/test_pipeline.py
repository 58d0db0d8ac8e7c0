"""End to end: the real `dvc repro` on a temp copy of the repo with a tiny synthetic mirror."""

import json
import re
from pathlib import Path

from tests.e2e import clone, make, ran, set_params, sh, stale

GIT_TRACKED = [
    "reports/metrics.json",
    "reports/train.json",
    "reports/machine.json",
    "reports/classes.csv",
    "reports/predictions.csv",
    "reports/errors.png",
    "reports/rows.csv",
    "reports/reading.png",
    "reports/train/metrics.json",
    *(
        f"reports/train/plots/metrics/{split}/{name}.tsv"
        for split in ("train", "eval")
        for name in ("accuracy", "loss")
    ),
]
OUTPUTS = [*GIT_TRACKED, "reports/data.json", "models/model.keras", "data/prepared/test/y.npy"]


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
    tracked = sh(repo, "git", "ls-files", "reports").stdout.split()
    assert sorted(tracked) == sorted(["reports/.gitignore", *GIT_TRACKED])
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


def test_every_stage_is_restored_from_the_run_cache(tmp_path: Path, repo: Path) -> None:
    """Change a param of the first two stages, repro (all five run), change it back, repro:
    nothing runs, DVC restores each stage's outputs from its run-cache, byte for byte, git-
    tracked metrics and plots included (a `cache: false` output that is neither would turn
    the stage's run-cache off)."""
    copy = clone(repo, tmp_path, data=True)
    committed = {path: (copy / path).read_bytes() for path in OUTPUTS}
    original = (copy / "params.yaml").read_text()
    set_params(copy, {"download": {"timeout": 29.5}, "prepare": {"seed": 4242}})
    changed = sh(copy, "dvc", "repro").stdout
    assert re.findall(r"Running stage '(\w+)'", changed) == [
        "download",
        "prepare",
        "train",
        "evaluate",
        "explain",
    ]
    (copy / "params.yaml").write_text(original)
    back = sh(copy, "dvc", "repro").stdout
    assert "Running stage" not in back
    assert re.findall(r"Stage '(\w+)' is cached - skipping run", back) == [
        "download", "prepare", "train", "evaluate", "explain"
    ]  # fmt: skip
    assert {path: (copy / path).read_bytes() for path in OUTPUTS} == committed
    assert stale(copy) == set()
    assert sh(copy, "git", "status", "--porcelain").stdout == ""


def test_a_fresh_clone_draws_every_plot_without_data(repo: Path, tmp_path: Path) -> None:
    """Every plot's data is in git, the training curves included: CI and any viewer that
    reads git draw them with no `dvc pull`, and CI's plots-diff renders them as pictures."""
    fresh = clone(repo, tmp_path)
    shown = json.loads(sh(fresh, "dvc", "plots", "show", "--json").stdout)
    assert "errors" not in shown
    drawn = {name for name, plots in shown["data"].items() if plots}
    assert {"Training curves", "Accuracy per epoch", "Mistakes", "reports/rows.csv"} <= drawn
    listed = make(fresh, "plots-diff", "BASE=HEAD").stdout
    pictures = sorted((fresh / "dvc_plots/diff").iterdir())
    assert {"training-curves.png", "accuracy-per-epoch.png", "mistakes.png"} <= {
        picture.name for picture in pictures
    }
    assert all(picture.read_bytes().startswith(b"\x89PNG") for picture in pictures)
    assert all(f"- {picture.name}\n" in listed for picture in pictures)
