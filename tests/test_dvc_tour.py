"""The DVC commands README tours, run for real on the tiny e2e repo: `make report` and the
accuracy gate, `dvc plots show`, `dvc exp run` (one, and a queued grid), `dvc exp show`,
and `dvc plots diff` between two experiments."""

import json
import sys
import time
from pathlib import Path

import pytest

from tests.e2e import sh

VENV = Path(sys.executable).parent.parent
PLOTS = {"Training curves", "Accuracy per epoch", "Confusion matrix", "F1 per digit"}
GALLERY = "reports/errors.png"


def accuracy(repo: Path) -> float:
    return json.loads((repo / "reports/metrics.json").read_text())["test"]["accuracy"]


def set_accuracy(repo: Path, value: float) -> None:
    path = repo / "reports/metrics.json"
    metrics = json.loads(path.read_text())
    metrics["test"]["accuracy"] = value
    path.write_text(json.dumps(metrics, indent=2) + "\n")


def make_report(repo: Path, check: bool = True):
    """`make report BASE=main`, with this interpreter's environment standing in for .venv."""
    args = ("make", "-s", "-o", f"{VENV}/bin/dvc", "report", "BASE=main", f"VENV={VENV}")
    return sh(repo, *args, check=check)


def row(markdown: str, path: str, metric: str) -> list[str]:
    """The cells after Path and Metric of one row of a `dvc metrics diff --md` table."""
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[:2] == [path, metric]:
            return cells[2:]
    raise AssertionError(f"no row {path} {metric} in:\n{markdown}")


def test_make_report_shows_every_metric_against_main_and_passes(repo: Path) -> None:
    result = make_report(repo)
    value = accuracy(repo)
    assert "## Metrics: workspace against main" in result.stdout
    base, workspace, _ = row(result.stdout, "reports/metrics.json", "test.accuracy")
    assert float(base) == float(workspace) == value
    for metric in ("test.loss", "test.macro_f1", "test.errors"):
        assert row(result.stdout, "reports/metrics.json", metric)
    assert "reports/data.json" not in result.stdout
    assert "**Gate passed:** test.accuracy" in result.stdout


def test_the_gate_fails_beyond_the_tolerance_and_passes_within_it(restore: Path) -> None:
    repo = restore
    base = accuracy(repo)
    set_accuracy(repo, round(base - 0.0021, 6))
    failed = make_report(repo, check=False)
    assert failed.returncode != 0
    message = (
        f"test.accuracy dropped from {base:g} (main) to {base - 0.0021:g}, "
        "more than report.max_accuracy_drop=0.002"
    )
    assert f"error: {message}\n" in failed.stderr
    before, after, _ = row(failed.stdout, "reports/metrics.json", "test.accuracy")
    assert (float(before), float(after)) == (base, round(base - 0.0021, 6))
    assert f"**Gate failed:** {message}." in failed.stdout
    set_accuracy(repo, round(base - 0.002, 6))
    assert make_report(repo).returncode == 0


def test_plots_show_renders_all_five_plots(repo: Path, tmp_path: Path) -> None:
    shown = json.loads(sh(repo, "dvc", "plots", "show", "--json", "-o", str(tmp_path)).stdout)
    plots = shown["data"]
    assert set(plots) == PLOTS | {GALLERY}
    curves = plots["Training curves"][0]["content"]["data"]["values"]
    assert {row["filename"] for row in curves} == {"train/loss.tsv", "eval/loss.tsv"}
    assert len(curves) == 2 * 6  # train and validation, one row per epoch
    confusion = plots["Confusion matrix"][0]["content"]["data"]["values"]
    assert len(confusion) == 200 and {"actual", "predicted"} <= set(confusion[0])
    assert len(plots["F1 per digit"][0]["content"]["data"]["values"]) == 10
    image = Path(plots[GALLERY][0]["url"])
    assert image.read_bytes() == (repo / GALLERY).read_bytes()
    sh(repo, "dvc", "plots", "show", "-o", str(tmp_path / "html"))
    html = (tmp_path / "html/index.html").read_text()
    assert all(title in html for title in PLOTS)
    assert "errors.png" in html


def experiments(repo: Path) -> dict[str, dict]:
    """`dvc exp show --json` as {experiment name: its data}."""
    found = {}
    for baseline in json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout):
        for group in baseline.get("experiments") or []:
            for rev in group["revs"]:
                found[rev["name"]] = rev["data"]
    return found


def wait_for_queue(repo: Path, seconds: float = 300) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = sh(repo, "dvc", "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            return status
        time.sleep(1)
    pytest.fail(f"queue still busy after {seconds} s:\n{status}")


def test_experiments_run_queue_show_and_diff_their_plots(restore: Path, tmp_path: Path) -> None:
    repo = restore
    sh(repo, "dvc", "exp", "run", "-n", "units-16", "-S", "train.units=16")
    sh(repo, "dvc", "exp", "run", "--queue", "-S", "train.units=8,32")
    try:
        sh(repo, "dvc", "queue", "start", "-j", "2")
        status = wait_for_queue(repo)
    finally:
        sh(repo, "dvc", "queue", "stop", check=False)
    assert status.count("Success") == 2, status
    found = experiments(repo)
    units = {
        name: d["params"]["params.yaml"]["data"]["train"]["units"] for name, d in found.items()
    }
    assert sorted(units.values()) == [8, 16, 32] and units["units-16"] == 16
    for data in found.values():
        metrics = data["metrics"]
        assert set(metrics) <= {"reports/metrics.json", "reports/train.json"}  # no data.json
        assert set(metrics["reports/metrics.json"]["data"]["test"]) == {
            "accuracy",
            "loss",
            "macro_f1",
            "errors",
        }
    other = next(name for name, value in units.items() if value == 32)
    args = ("dvc", "plots", "diff", "units-16", other, "--json", "-o", str(tmp_path))
    diff = json.loads(sh(repo, *args).stdout)["data"]
    for title in PLOTS:
        assert diff[title][0]["revisions"] == ["units-16", other], title
    assert [image["revisions"] for image in diff[GALLERY]] == [["units-16"], [other]]
