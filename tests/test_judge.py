"""The gate's judge without DVC: its arithmetic, its thresholds (every key required, the
judge's own revision's), the consistency of committed results, the rerun's comparison, and
how a base's judge is asked (tests/test_gate.py and tests/test_verify.py run them for real).
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rowlstm.errors import UserError
from rowlstm.params import ReportParams
from tests.helpers import ROOT
from tools.gates import accuracy_of, ask_base, committed, consistency, drop_gate, floor_gate
from tools.gates import thresholds as judge_thresholds
from tools.report import review_lines
from tools.reproduction import compare

PARAMS_TEXT = (ROOT / "params.yaml").read_text()
PARAMS = ReportParams(
    max_accuracy_drop=0.002, min_accuracy=0.9, verify_tolerance=0.002, quick_min_accuracy=0.5
)


def test_a_drop_up_to_the_tolerance_passes_and_beyond_it_fails() -> None:
    assert drop_gate(0.9879, [("committed", 0.9859)], PARAMS, "main").failures == []
    assert drop_gate(0.9879, [("committed", 0.999)], PARAMS, "main").failures == []
    assert drop_gate(
        0.9879, [("at 1a2b3c4", 0.9858), ("committed", 0.99)], PARAMS, "main"
    ).failures == [
        "test.accuracy (at 1a2b3c4) dropped from 0.9879 (main) to 0.9858, "
        "more than report.max_accuracy_drop=0.002"
    ]


def test_the_floor_holds_whatever_the_base_says() -> None:
    """Ten changes that each lose 0.0019 pass the drop gate one by one: not the floor."""
    verdict = drop_gate(0.9019, [("committed", 0.9), ("reproduced", 0.8999)], PARAMS, "main")
    assert verdict.failures == [
        "test.accuracy (reproduced) 0.8999 is below report.min_accuracy=0.9"
    ]
    skipped = drop_gate(None, [("committed", 0.1)], PARAMS, "old")
    assert skipped.failures == ["test.accuracy (committed) 0.1 is below report.min_accuracy=0.9"]
    assert "(old has no metrics)" in skipped.passed[0]


def test_the_quick_runs_floor_passes_at_it_and_fails_below_it() -> None:
    assert floor_gate(0.5, 0.5).failures == []
    assert floor_gate(0.0905, 0.5).failures == [
        "test.accuracy 0.0905 is below report.quick_min_accuracy=0.5: "
        "the pipeline has stopped learning"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "m.json: not valid JSON"),
        ('{"test": {}}', "m.json: no number at test.accuracy"),
        ('{"test": {"accuracy": "high"}}', "m.json: no number at test.accuracy"),
    ],
)
def test_a_broken_metrics_file_is_named(text: str, expected: str) -> None:
    with pytest.raises(UserError, match=expected):
        accuracy_of(text, "m.json")


def test_an_unknown_base_revision_says_how_ci_must_check_out() -> None:
    with pytest.raises(UserError, match=r"unknown git revision 'no-such-branch' .*fetch-depth: 0"):
        committed("no-such-branch", Path("params.yaml"))


def with_threshold(text: str, key: str, value: str | None) -> str:
    """params.yaml's text with report.KEY set to value, or its line removed (None)."""
    if value is None:
        changed, count = re.subn(rf"(?m)^  {key}:.*\n", "", text)
    else:
        changed, count = re.subn(rf"(?m)^(  {key}:) .*$", rf"\1 {value}", text)
    assert count == 1, key
    return changed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (with_threshold(PARAMS_TEXT, "min_accuracy", None), "key report.min_accuracy is missing"),
        (re.sub(r"(?ms)^report:.*", "", PARAMS_TEXT), "key report.max_accuracy_drop is missing"),
        ("report: [unclosed\n", "not valid YAML: .*"),
        (
            with_threshold(PARAMS_TEXT, "max_accuracy_drop", "5"),
            "report.max_accuracy_drop must be <= 1, got 5",
        ),
        (
            with_threshold(PARAMS_TEXT, "verify_tolerance", "high"),
            "report.verify_tolerance must be a number, got 'high'",
        ),
    ],
    ids=["a threshold missing", "no report section", "not YAML", "out of range", "not a number"],
)
def test_thresholds_the_judge_cannot_read_fail_closed_in_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(UserError, match=f"^params.yaml at base: {expected}") as raised:
        judge_thresholds("base", tmp_path / "params.yaml")
    assert "\n" not in str(raised.value)


def test_the_judges_thresholds_are_its_own_params_yamls() -> None:
    assert judge_thresholds("HEAD") == judge_thresholds("HEAD", ROOT / "params.yaml")


def results(folder: Path, accuracy: float = 0.75, errors: int = 1, **changes: str) -> Path:
    """Committed results of a 4-digit test split with one error, as evaluate and explain
    write them; changes replace whole files (by name, dots as underscores)."""
    files = {
        "metrics.json": json.dumps({"test": {"accuracy": accuracy, "errors": errors}}),
        "predictions.csv": "actual,predicted\n1,1\n2,2\n3,5\n4,4\n",
        "classes.csv": "digit,support,errors\n1,1,0\n2,1,0\n3,1,1\n4,1,0\n",
        "rows.csv": "rows_read,accuracy\n1,0.25\n28,0.75\n",
    }
    (folder / "reports").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / "reports" / name).write_text(changes.get(name.replace(".", "_"), text))
    return folder


def test_consistent_results_pass_and_each_disagreement_is_named(tmp_path: Path) -> None:
    assert consistency(results(tmp_path / "honest")) == []
    assert consistency(results(tmp_path / "forged", accuracy=0.9999)) == [
        "reports/metrics.json: test.accuracy 0.9999 is not 1 - 1/4 (test.errors over the test "
        "digits)",
        "reports/metrics.json: test.accuracy 0.9999, but reports/rows.csv ends at 0.75",
    ]
    assert consistency(results(tmp_path / "both", accuracy=1.0, errors=0)) == [
        "reports/metrics.json: test.errors 0, but reports/predictions.csv counts 1",
        "reports/metrics.json: test.errors 0, but reports/classes.csv counts 1",
        "reports/metrics.json: test.accuracy 1, but reports/rows.csv ends at 0.75",
    ]
    with pytest.raises(UserError, match=r"^the committed results cannot be read: "):
        consistency(results(tmp_path / "broken", rows_csv="rows_read,accuracy\n"))


MACHINE = {
    "cpu": "AMD EPYC",
    "cores": 2,
    "caches": "L2 1024K",
    "isa": "avx2",
    "tensorflow": "2.21.0",
}


def run(folder: Path, accuracy: float, model: str, **machine: object) -> Path:
    """A run's dvc.lock (the model's hash) and reports, made on this kind of machine."""
    (folder / "reports").mkdir(parents=True)
    (folder / "reports/metrics.json").write_text(json.dumps({"test": {"accuracy": accuracy}}))
    record = {"machine": MACHINE | machine}
    (folder / "reports/machine.json").write_text(json.dumps(record))
    lock = {"stages": {"train": {"outs": [{"path": "models/model.keras", "md5": model}]}}}
    (folder / "dvc.lock").write_text(json.dumps(lock))  # JSON is YAML
    return folder


def test_a_rerun_on_the_same_kind_must_give_the_same_bytes(tmp_path: Path) -> None:
    committed_run = run(tmp_path / "committed", 0.99, "a" * 32)
    same = run(tmp_path / "same", 0.99, "a" * 32)
    failures, passed = compare(committed_run, same, 0.002)
    assert failures == [] and passed[0].startswith("reproduced on the committed run's kind")
    other = run(tmp_path / "other", 0.99, "b" * 32)
    failures, _ = compare(committed_run, other, 0.002)
    assert failures == [
        "models/model.keras: the rerun gave other bytes (md5 bbbbbbbb, committed aaaaaaaa), "
        "on the committed run's kind of machine (AMD EPYC, 2 cores, avx2, TensorFlow 2.21.0)"
    ]


def test_a_rerun_on_another_kind_is_held_to_the_tolerance(tmp_path: Path) -> None:
    committed_run = run(tmp_path / "committed", 0.9927, "a" * 32)
    near = run(tmp_path / "near", 0.9907, "b" * 32, isa="avx512_core_amx")
    failures, passed = compare(committed_run, near, 0.002)
    assert failures == [] and "within report.verify_tolerance=0.002" in passed[0]
    assert "bytes are not compared" in passed[0]
    far = run(tmp_path / "far", 0.9906, "a" * 32, cores=16)
    failures, _ = compare(committed_run, far, 0.002)
    assert failures == [
        "test.accuracy reproduced 0.9906 against 0.9927 committed: further apart than "
        "report.verify_tolerance=0.002 (rerun on AMD EPYC, 16 cores, avx2, TensorFlow 2.21.0; "
        "the committed run on AMD EPYC, 2 cores, avx2, TensorFlow 2.21.0)"
    ]
    (committed_run / "reports/machine.json").unlink()
    with pytest.raises(UserError, match="the committed run does not say which machine made it"):
        compare(committed_run, near, 0.002)


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository as the working directory holding this repo's params.yaml: tests
    commit a base revision and tag it `base`, then edit the workspace."""
    monkeypatch.chdir(tmp_path)
    for args in (("init", "-q"), ("config", "user.email", "t@t"), ("config", "user.name", "t")):
        subprocess.run(["git", *args], check=True)
    (tmp_path / "params.yaml").write_text(PARAMS_TEXT)
    return tmp_path


def commit_base(repo: Path) -> None:
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "commit", "-qm", "base"], check=True)
    subprocess.run(["git", "tag", "base"], check=True)


def test_thresholds_the_change_sets_are_shown_for_review(history: Path) -> None:
    commit_base(history)
    assert review_lines("base") == []
    text = with_threshold(PARAMS_TEXT, "max_accuracy_drop", "0.5")
    text = with_threshold(with_threshold(text, "min_accuracy", None), "quick_min_accuracy", "0.6")
    (history / "params.yaml").write_text(text.replace("report:\n", "report:\n  max_drop: 0.5\n"))
    ours = judge_thresholds("HEAD", ROOT / "params.yaml")
    drop, floor, quick = ours.max_accuracy_drop, ours.min_accuracy, ours.quick_min_accuracy
    assert review_lines("base") == [
        f"**Needs review:** this change sets report.max_accuracy_drop from {drop} to 0.5; "
        f"the gate uses base's {drop}.",
        "**Needs review:** report.max_drop=0.5 is new in this change; base's gate does not "
        "read it until it is merged.",
        f"**Needs review:** this change removes report.min_accuracy; the gate uses base's {floor}.",
        f"**Needs review:** this change sets report.quick_min_accuracy from {quick} to 0.6; "
        f"the gate uses base's {quick}.",
    ]


def test_a_base_without_a_judge_fails_closed(history: Path) -> None:
    commit_base(history)
    asked = ask_base("base")
    assert asked.failures == [
        "base has no gate (tools/gates.py) to judge this change with: a change that brings "
        "the gate is for review, it cannot pass its own"
    ]


def test_a_base_whose_judge_cannot_read_the_change_fails_naming_why(history: Path) -> None:
    """The base's judge, whatever it is, is run: here one that expects another layout."""
    (history / "tools").mkdir()
    (history / "tools/__init__.py").write_text("")
    (history / "tools/gates.py").write_text("import json\njson.load(open('reports/score.json'))\n")
    commit_base(history)
    shutil.rmtree(history / "tools")  # the change's own judge is not the one asked
    asked = ask_base("base")
    assert asked.failures == [
        "the gate of base cannot judge this change: FileNotFoundError: [Errno 2] No such file "
        "or directory: 'reports/score.json'"
    ]
