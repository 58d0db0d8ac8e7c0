"""The DVC commands README tours, run for real on the tiny e2e repo: `dvc plots show`,
`dvc exp run --queue` (two at once), `dvc exp show`, and `dvc plots diff` between two
experiments. (`make report` and the CI gates: tests/test_gate.py.)"""

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e import environment, experiments, sh

CURVES = {"Training curves", "Accuracy per epoch"}  # dvc.yaml's top-level plots, with
MISTAKES = "Mistakes"  # the confusion matrix without its diagonal (.dvc/plots/mistakes.json)
CONFUSION, PER_DIGIT, GALLERY = (
    "reports/predictions.csv",
    "reports/classes.csv",
    "reports/errors.png",
)
ROWS, READING = "reports/rows.csv", "reports/reading.png"  # explain's own plots
# DVCLive's, one per metric: the train stage's own plots, which the curves above combine.
LIVE = {
    f"reports/train/plots/metrics/{s}/{m}.tsv"
    for s in ("train", "eval")
    for m in ("loss", "accuracy")
}
PLOTS = (
    CURVES | LIVE | {MISTAKES, CONFUSION, PER_DIGIT, ROWS}
)  # stages' plots are named by their paths


def test_plots_show_renders_every_declared_plot(repo: Path, tmp_path: Path) -> None:
    shown = json.loads(sh(repo, "dvc", "plots", "show", "--json", "-o", str(tmp_path)).stdout)
    plots = shown["data"]
    assert set(plots) == PLOTS | {GALLERY, READING}
    curves = plots["Training curves"][0]["content"]["data"]["values"]
    assert {row["filename"] for row in curves} == {"train/loss.tsv", "eval/loss.tsv"}
    assert len(curves) == 2 * 6  # train and validation, one row per epoch
    confusion = plots[CONFUSION][0]["content"]["data"]["values"]
    assert len(confusion) == 200 and {"actual", "predicted"} <= set(confusion[0])
    assert len(plots[PER_DIGIT][0]["content"]["data"]["values"]) == 10
    mistakes = plots[MISTAKES][0]["content"]
    pairs = [(row["actual"], row["predicted"]) for row in mistakes["data"]["values"]]
    assert pairs == [(row["actual"], row["predicted"]) for row in confusion]  # same rows
    assert "datum['predicted'] === datum['actual'] ? null" in json.dumps(mistakes)
    rows = plots[ROWS][0]["content"]["data"]["values"]
    assert [int(row["rows_read"]) for row in rows] == list(range(1, 29))
    image = Path(plots[GALLERY][0]["url"])
    assert image.read_bytes() == (repo / GALLERY).read_bytes()
    sh(repo, "dvc", "plots", "show", "-o", str(tmp_path / "html"))
    html = (tmp_path / "html/index.html").read_text()
    assert all(title in html for title in CURVES | {"Confusion matrix", "Test errors per digit"})
    assert "errors.png" in html


def start_queue(repo: Path, workers: int) -> None:
    """`dvc queue start`, its output not captured: the workers it starts inherit its output
    pipes, and one that outlives the queue (seen once here) would hang a capturing call.
    wait_for_queue then bounds the wait."""
    command = ["dvc", "queue", "start", "-j", str(workers)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(command, cwd=repo, env=environment(repo), check=True, **quiet)


def wait_for_queue(repo: Path, seconds: float = 300) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = sh(repo, "dvc", "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            return status
        time.sleep(5)  # each `dvc queue status` takes a core for a second or more
    pytest.fail(f"queue still busy after {seconds} s:\n{status}")


def test_experiments_run_queue_show_and_diff_their_plots(restore: Path, tmp_path: Path) -> None:
    repo = restore
    # Another test on this worker (the seeds table) may have run experiments in the e2e
    # repo before: only this test's count.
    before, done = set(experiments(repo)), sh(repo, "dvc", "queue", "status").stdout
    sh(repo, "dvc", "exp", "run", "--queue", "-n", "units-16", "-S", "train.units=16")
    sh(repo, "dvc", "exp", "run", "--queue", "-S", "train.units=32")
    try:
        start_queue(repo, workers=2)
        status = wait_for_queue(repo)
    finally:
        sh(repo, "dvc", "queue", "stop", check=False)
    assert status.count("Success") - done.count("Success") == 2, status
    found = {name: data for name, data in experiments(repo).items() if name not in before}
    units = {
        name: d["params"]["params.yaml"]["data"]["train"]["units"] for name, d in found.items()
    }
    assert sorted(units.values()) == [16, 32] and units["units-16"] == 16
    for data in found.values():
        metrics = data["metrics"]
        assert set(metrics) == {  # no data.json
            "reports/metrics.json",
            "reports/train.json",
            "reports/train/metrics.json",  # DVCLive's, updated after every epoch
            "reports/machine.json",  # which kind of machine made the experiment
        }
        assert set(metrics["reports/metrics.json"]["data"]["test"]) == {
            "accuracy",
            "loss",
            "macro_f1",
            "errors",
        }
    header = sh(repo, "dvc", "exp", "show", "--csv").stdout.splitlines()[0].split(",")
    assert {"train.epochs", "training.epochs_run", "test.accuracy", "eval.accuracy"} <= set(header)
    assert not [name for name in header if ":" in name]  # no clash, so no file-name prefixes
    other = next(name for name, value in units.items() if value == 32)
    args = ("dvc", "plots", "diff", "units-16", other, "--json", "-o", str(tmp_path))
    diff = json.loads(sh(repo, *args).stdout)["data"]
    for title in PLOTS:
        assert diff[title][0]["revisions"] == ["units-16", other], title
    assert [image["revisions"] for image in diff[GALLERY]] == [["units-16"], [other]]
