"""CI cannot be fooled: `make report` and `make quick` on clones of the tiny e2e repo.

Each test works in its own `git clone`, as CI checks a commit out: without data or DVC
cache, or (data=True) with a copy of the e2e repo's cache, so the shared repo's history
and run-cache stay as they are. The verdict is the base's judge's, with the base's
thresholds: the report must fail on committed results that do not belong to the committed
pipeline (a stale dvc.lock), on results that disagree with each other (an edited number
recorded with `dvc commit -f`), on a declared metric it cannot load, on an accuracy drop
against the base at any commit since it, whatever the change does to its own gate, and,
for the quick run, below the floor; it passes otherwise, skips the drop gate where the
base has no metrics, and fails where the base has no judge. (`make verify`, which reruns:
tests/test_verify.py.)
"""

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e import clone, commit, make, set_params, sh

ADVICE = "(run `dvc repro`, commit)"


def errors(result: subprocess.CompletedProcess) -> list[str]:
    """The report's own lines on stderr (make adds one of its own when a target fails:
    `make: ***`, or `make[1]: ***` under `make test`)."""
    return [line for line in result.stderr.splitlines() if not re.match(r"make(\[\d+\])?: ", line)]


def accuracy(repo: Path) -> float:
    return json.loads((repo / "reports/metrics.json").read_text())["test"]["accuracy"]


def set_accuracy(repo: Path, value: float) -> None:
    path = repo / "reports/metrics.json"
    metrics = json.loads(path.read_text())
    metrics["test"]["accuracy"] = value
    path.write_text(json.dumps(metrics, indent=2) + "\n")


def dropped(head: float, base: str) -> str:
    """The gate's line for a run 0.0021 below the base's, with the base's 0.002 allowed."""
    return (
        f"test.accuracy (committed) dropped from {round(head + 0.0021, 6):g} ({base}) to "
        f"{head:g}, more than report.max_accuracy_drop=0.002"
    )


def better_base(repo: Path, name: str = "better") -> float:
    """A branch off main whose committed accuracy is 0.0021 better: main's honest run then
    counts as a drop beyond the tolerance. Returns main's accuracy."""
    head = accuracy(repo)
    sh(repo, "git", "checkout", "-qb", name, "main")
    set_accuracy(repo, round(head + 0.0021, 6))
    commit(repo, "base 0.0021 better")
    sh(repo, "git", "checkout", "-q", "main")
    return head


def row(markdown: str, path: str, metric: str) -> list[str]:
    """The cells after Path and Metric of one row of a `dvc metrics diff --md` table."""
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[:2] == [path, metric]:
            return cells[2:]
    raise AssertionError(f"no row {path} {metric} in:\n{markdown}")


def test_a_fresh_clone_without_data_or_cache_passes_with_every_metric(
    repo: Path, tmp_path: Path
) -> None:
    fresh = clone(repo, tmp_path)
    assert not (fresh / "data/raw").exists() and not (fresh / ".dvc/cache").exists()
    result = make(fresh, "report", "BASE=main")
    base, workspace, _ = row(result.stdout, "reports/metrics.json", "test.accuracy")
    assert float(base) == float(workspace) == accuracy(fresh)
    for metric in ("test.loss", "test.macro_f1", "test.errors"):
        assert row(result.stdout, "reports/metrics.json", metric)
    for metric in ("training.best_val_accuracy", "training.best_epoch", "training.epochs_run"):
        assert row(result.stdout, "reports/train.json", metric)  # git-tracked: loadable here
    assert "reports/data.json" not in result.stdout
    assert "**Gate passed** (the gate of main): test.accuracy" in result.stdout
    assert result.stderr == ""


def edit_param(repo: Path) -> None:
    set_params(repo, {"train": {"units": 8}})


def edit_code(repo: Path) -> None:
    with (repo / "stages/evaluate.py").open("a") as file:
        file.write("# an edit\n")


def edit_cmd(repo: Path) -> None:
    path = repo / "dvc.yaml"
    path.write_text(
        path.read_text().replace("python -m stages.prepare", "python -Im stages.prepare")
    )


def edit_metrics(repo: Path) -> None:
    set_accuracy(repo, 0.987654)  # a better number than the run gave


def drop_from_lock(repo: Path) -> None:
    path = repo / "dvc.lock"
    lock = yaml.safe_load(path.read_text())
    del lock["stages"]["evaluate"]
    path.write_text(yaml.safe_dump(lock, sort_keys=False))


@pytest.mark.parametrize(
    ("edit", "line"),
    [
        (edit_param, "train: params.yaml train.units modified"),
        (edit_code, "evaluate: stages/evaluate.py modified"),
        (edit_cmd, "prepare: its cmd in dvc.yaml changed"),
        (edit_metrics, "evaluate: output reports/metrics.json modified"),
        (drop_from_lock, "evaluate: not in dvc.lock (never run)"),
    ],
)
def test_a_change_committed_without_rerunning_fails_naming_it(
    repo: Path, tmp_path: Path, edit, line: str
) -> None:
    fresh = clone(repo, tmp_path)
    edit(fresh)
    commit(fresh, "changed, not reproduced")
    result = make(fresh, "report", "BASE=HEAD~1", check=False)
    assert result.returncode != 0
    assert errors(result) == [f"error: dvc.lock is stale, {line} {ADVICE}"]
    assert "**Gate failed** (the gate of HEAD~1):" in result.stdout
    assert "Gate passed" not in result.stdout


def test_every_stale_stage_gets_its_line(repo: Path, tmp_path: Path) -> None:
    fresh = clone(repo, tmp_path)
    for edit in (edit_param, edit_code, edit_cmd):
        edit(fresh)
    result = make(fresh, "report", "BASE=main", check=False)
    assert result.returncode != 0
    stages = [re.match(r"error: dvc.lock is stale, (\w+):", x)[1] for x in errors(result)]
    assert stages == ["prepare", "train", "evaluate"]


def test_a_stage_rerun_without_its_downstream_is_caught_without_data(
    repo: Path, tmp_path: Path
) -> None:
    """`dvc repro prepare` alone, committed: dvc.lock's train inputs are not prepare's
    outputs. In a fresh clone the data is absent, so only that mismatch can tell."""
    copy = clone(repo, tmp_path / "a", data=True)
    set_params(copy, {"prepare": {"val_size": 60}})
    sh(copy, "dvc", "repro", "prepare")
    commit(copy, "prepare rerun, train and evaluate not")
    fresh = clone(copy, tmp_path / "b")
    result = make(fresh, "report", "BASE=HEAD~1", check=False)
    mismatch = "in dvc.lock is not what prepare produced"
    assert errors(result) == [
        f"error: dvc.lock is stale, train: data/prepared/train {mismatch}; "
        f"data/prepared/val {mismatch} {ADVICE}"
    ]


def test_rerunning_and_committing_passes(repo: Path, tmp_path: Path) -> None:
    copy = clone(repo, tmp_path, data=True)
    set_params(copy, {"evaluate": {"batch_size": 40}})  # inference only: same metrics
    commit(copy, "evaluate.batch_size, not reproduced")
    stale = make(copy, "report", "BASE=main", check=False)
    assert errors(stale) == [
        f"error: dvc.lock is stale, evaluate: params.yaml evaluate.batch_size modified {ADVICE}"
    ]
    sh(copy, "dvc", "repro")
    commit(copy, "reproduced")
    assert "**Gate passed** (the gate of main)" in make(copy, "report", "BASE=main").stdout


def test_a_declared_metric_that_git_does_not_hold_fails_the_report(
    repo: Path, tmp_path: Path
) -> None:
    """As reports/train.json was before: a DVC-cached metric, absent from a fresh clone."""
    fresh = clone(repo, tmp_path)
    path = fresh / "dvc.yaml"
    path.write_text(
        path.read_text().replace(
            "reports/train.json:\n          cache: false", "reports/train.json"
        )
    )
    sh(fresh, "git", "rm", "-q", "reports/train.json")
    commit(fresh, "summary in DVC's cache")
    result = make(fresh, "report", "BASE=main", check=False)
    assert result.returncode != 0
    assert re.fullmatch(
        r"error: declared metric cannot be loaded: reports/train.json \(.*No storage files.*\) "
        r"\(keep metrics in git: cache: false\)",
        "\n".join(errors(result)),
    )


def test_the_gate_fails_beyond_the_tolerance_and_passes_within_it(
    repo: Path, tmp_path: Path
) -> None:
    """The base is made better, so the workspace's honest run stays consistent with dvc.lock."""
    fresh = clone(repo, tmp_path)
    head = accuracy(fresh)
    for drop, branch in ((0.0021, "better"), (0.002, "level")):
        sh(fresh, "git", "checkout", "-qb", branch, "main")
        set_accuracy(fresh, round(head + drop, 6))
        commit(fresh, f"base {drop} better")
        sh(fresh, "git", "checkout", "-q", "main")
    failed = make(fresh, "report", "BASE=better", check=False)
    message = dropped(head, "better")
    assert failed.returncode != 0 and errors(failed) == [f"error: {message}"]
    assert f"**Gate failed** (the gate of better):\n\n- {message}\n" in failed.stdout
    assert "**Gate passed** (the gate of level)" in make(fresh, "report", "BASE=level").stdout


BREAK_LABELS = (
    '"train": (train_images[train], train_labels[train]),',
    '"train": (train_images[train], np.roll(train_labels[train], 1)),',
)


def test_the_quick_runs_floor_fails_a_pipeline_that_stopped_learning(
    repo: Path, tmp_path: Path
) -> None:
    """Labels misaligned by one, as a bug in prepare could do: it trains, evaluates, and
    scores about chance; `make quick` (here with the tiny run's own params: QUICK_RUN=)
    fails it against the floor in params.yaml, and passes the healthy run. Each is a
    temporary experiment: the workspace and `dvc exp list` stay as they were, and the
    unchanged healthy run comes back from DVC's run-cache without training."""
    copy = clone(repo, tmp_path, data=True)
    floor = yaml.safe_load((copy / "params.yaml").read_text())["report"]["quick_min_accuracy"]
    before = workspace(copy)
    healthy = make(copy, "quick", "QUICK_RUN=")
    assert (
        f"**Gate passed** (the gate of main): test.accuracy {accuracy(copy):g}, floor"
        in healthy.stdout
    )
    assert "Running stage" not in healthy.stderr  # HEAD's own run: nothing to train
    assert workspace(copy) == before
    path = copy / "stages/prepare.py"
    assert BREAK_LABELS[0] in path.read_text()
    path.write_text(path.read_text().replace(*BREAK_LABELS))
    before = workspace(copy)
    result = make(copy, "quick", "QUICK_RUN=", check=False)
    assert result.returncode != 0
    failed = re.fullmatch(
        r"error: test.accuracy (\S+) is below report.quick_min_accuracy=(\S+): "
        "the pipeline has stopped learning",
        errors(result)[-1],
    )
    assert failed and float(failed[1]) < 0.3 and float(failed[2]) == floor
    assert "Running stage 'train'" in result.stderr  # the uncommitted edit was run
    assert workspace(copy) == before
    again = make(copy, "quick", "QUICK_RUN=", check=False)
    assert errors(again)[-1] == errors(result)[-1]
    assert "Running stage" not in again.stderr  # restored from DVC's run-cache
    assert "Stage 'train' is cached - skipping run" in again.stderr
    bad = make(copy, "quick", "QUICK_RUN=-S train.units=0", check=False)
    assert "error: params.yaml: train.units must be >= 1, got 0" in bad.stderr
    assert re.fullmatch(
        r"error: dvc exp run --temp -n quick-\w+ -S train.units=0 failed .*", errors(bad)[-1]
    )
    assert workspace(copy) == before


def workspace(repo: Path) -> tuple[str, ...]:
    """What a quick run must leave alone: git's view of the files, the run's outputs, and the
    experiments DVC lists."""
    outputs = [repo / "reports/metrics.json", repo / "models/model.keras", repo / "dvc.lock"]
    return (
        sh(repo, "git", "status", "--porcelain").stdout,
        *(hashlib.sha256(path.read_bytes()).hexdigest() for path in outputs),
        sh(repo, "dvc", "exp", "list", "--all-commits").stdout,
    )


def rename_threshold(repo: Path) -> None:
    """As a pull request could: report.max_accuracy_drop renamed max_drop (0.5) in the schema,
    the judge and params.yaml."""
    for name in ("rowlstm/params.py", "tools/gates.py", "params.yaml"):
        path = repo / name
        path.write_text(path.read_text().replace("max_accuracy_drop", "max_drop"))
    set_params(repo, {"report": {"max_drop": 0.5}})


def remove_threshold(repo: Path) -> None:
    path = repo / "params.yaml"
    path.write_text(re.sub(r"(?m)^  max_accuracy_drop:.*\n", "", path.read_text()))


def wave_through(repo: Path) -> None:
    """The change's own judge edited to pass any drop."""
    path = repo / "tools/gates.py"
    text = path.read_text()
    assert "> params.max_accuracy_drop" in text
    path.write_text(text.replace("> params.max_accuracy_drop", "> 1"))


@pytest.mark.parametrize(
    ("edit", "edits", "review"),
    [
        (
            rename_threshold,
            "tools/gates.py, params.yaml (report)",
            "**Needs review:** report.max_drop=0.5 is new in this change",
        ),
        (
            remove_threshold,
            "params.yaml (report)",
            "**Needs review:** this change removes report.max_accuracy_drop",
        ),
        (wave_through, "tools/gates.py", None),
    ],
    ids=["renamed", "removed", "judge edited"],
)
def test_a_change_cannot_loosen_its_own_gate(
    repo: Path, tmp_path: Path, edit, edits: str, review: str | None
) -> None:
    """The base is made better, so main's honest run is a drop beyond the base's 0.002. The
    change edits its gate (recorded with `dvc commit -f` where a stage's code changed):
    the base's judge and thresholds still fail it, and the summary names what it edits."""
    copy = clone(repo, tmp_path, data=True)
    head = better_base(copy)
    edit(copy)
    sh(copy, "dvc", "commit", "-f", "-q")
    commit(copy, "a lower accuracy, and the gate loosened to let it pass")
    failed = make(copy, "report", "BASE=better", check=False)
    assert failed.returncode != 0 and errors(failed) == [f"error: {dropped(head, 'better')}"]
    first = failed.stdout.splitlines()[0]
    assert first.startswith(f"**This change edits the gate:** {edits}. Review them"), first
    assert review is None or review in failed.stdout


def test_a_push_whose_middle_commit_lost_accuracy_fails(repo: Path, tmp_path: Path) -> None:
    """Two commits pushed at once, compared with the commit before the push: the first lost
    0.0021, the second put it back. Each is judged, not only the last."""
    fresh = clone(repo, tmp_path)
    head = accuracy(fresh)
    set_accuracy(fresh, round(head - 0.0021, 6))
    commit(fresh, "lost accuracy")
    middle = sh(fresh, "git", "rev-parse", "--short=7", "HEAD").stdout.strip()
    sh(fresh, "git", "checkout", "HEAD~1", "--", "reports/metrics.json")
    commit(fresh, "put it back")
    failed = make(fresh, "report", "BASE=HEAD~2", check=False)
    assert errors(failed) == [
        f"error: test.accuracy (at {middle}) dropped from {head:g} (HEAD~2) to "
        f"{round(head - 0.0021, 6):g}, more than report.max_accuracy_drop=0.002"
    ]


def test_forged_metrics_recorded_with_dvc_commit_f_fail_the_report(
    repo: Path, tmp_path: Path
) -> None:
    """`dvc commit -f` makes dvc.lock agree with an edited number: the lock check cannot
    tell, the other committed results can."""
    copy = clone(repo, tmp_path, data=True)
    edit_metrics(copy)
    sh(copy, "dvc", "commit", "-f", "-q", "evaluate")
    commit(copy, "a better number than the run gave")
    failed = make(copy, "report", "BASE=HEAD~1", check=False)
    lines = errors(failed)
    assert lines[0].startswith("error: reports/metrics.json: test.accuracy 0.987654 is not 1 - ")
    assert lines[1].endswith("but reports/rows.csv ends at 1")


def test_a_base_without_metrics_skips_the_drop_and_one_without_a_gate_fails(
    repo: Path, tmp_path: Path
) -> None:
    """Two bases in one clone: a commit that deleted reports/metrics.json (one warning, the
    floor still applies), and a root commit holding a README alone, which has no judge:
    the change cannot be judged by its own, so the gate fails closed."""
    fresh = clone(repo, tmp_path)
    sh(fresh, "git", "checkout", "-qb", "no-metrics", "main")
    sh(fresh, "git", "rm", "-q", "reports/metrics.json")
    commit(fresh, "no metrics")
    sh(fresh, "git", "checkout", "-q", "--orphan", "bare")
    sh(fresh, "git", "rm", "-rqf", ".")
    (fresh / "README.md").write_text("A pipeline to come.\n")
    sh(fresh, "git", "add", "README.md")
    commit(fresh, "a README alone")
    sh(fresh, "git", "checkout", "-qf", "main")
    result = make(fresh, "report", "BASE=no-metrics")
    assert result.stderr == (
        "warning: no-metrics has no committed reports/metrics.json, so there is no accuracy "
        "to compare with; the drop gate is skipped and the floor still applies\n"
    )
    assert "**Gate passed** (the gate of no-metrics)" in result.stdout
    base_value, here, _ = row(result.stdout, "reports/metrics.json", "test.accuracy")
    assert base_value == "-" and float(here) == accuracy(fresh)
    bare = make(fresh, "report", "BASE=bare", check=False)
    assert errors(bare) == [
        "error: bare has no gate (tools/gates.py) to judge this change with: a change that "
        "brings the gate is for review, it cannot pass its own"
    ]
    assert row(bare.stdout, "params.yaml", "report.max_accuracy_drop") == ["-", "0.002"]
