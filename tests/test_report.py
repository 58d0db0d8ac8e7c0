"""The gates' arithmetic, their thresholds and their errors, without DVC (tests/test_gate.py
runs them for real)."""

import re
import subprocess
from pathlib import Path

import pytest

from rowlstm.errors import UserError
from rowlstm.params import ReportParams, load_params
from tests.helpers import ROOT
from tools.report import (
    accuracy_of,
    committed_accuracy,
    floor_gate,
    gate,
    thresholds,
    verdict,
)

PARAMS_TEXT = (ROOT / "params.yaml").read_text()
WORKSPACE = load_params(ROOT / "params.yaml").report  # what the history fixture holds
# The base as it was before the gate existed (report is the last section).
NO_REPORT = re.sub(r"(?ms)^report:.*", "", PARAMS_TEXT)


def test_a_drop_up_to_the_tolerance_passes_and_beyond_it_fails() -> None:
    assert gate(0.9879, 0.9859, 0.002, "main") is None  # 0.0020000000000000018 in floats
    assert gate(0.9879, 0.9990, 0.002, "main") is None
    assert gate(0.9879, 0.9858, 0.002, "main") == (
        "test.accuracy dropped from 0.9879 (main) to 0.9858, "
        "more than report.max_accuracy_drop=0.002"
    )
    assert gate(None, 0.1, 0.002, "main") is None  # nothing committed at the base to compare


def test_the_quick_runs_floor_passes_at_it_and_fails_below_it() -> None:
    assert floor_gate(0.5, 0.5) is None
    assert floor_gate(0.7126, 0.5) is None
    assert floor_gate(0.0905, 0.5) == (
        "test.accuracy 0.0905 is below report.quick_min_accuracy=0.5: "
        "the pipeline has stopped learning"
    )


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
        committed_accuracy("no-such-branch")


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository as the working directory, holding this repo's params.yaml uncommitted
    (the workspace): tests commit a base revision's params.yaml and tag it `base`."""
    monkeypatch.chdir(tmp_path)
    for args in (("init", "-q"), ("config", "user.email", "t@t"), ("config", "user.name", "t")):
        subprocess.run(["git", *args], check=True)
    (tmp_path / "params.yaml").write_text(PARAMS_TEXT)
    return tmp_path


def commit_base(repo: Path, params: str | None) -> None:
    """Commit params.yaml with this text (None: a README alone) as `base`; then put the
    workspace's params.yaml back."""
    workspace = (repo / "params.yaml").read_text()
    if params is None:
        (repo / "README.md").write_text("a pipeline to come\n")
        (repo / "params.yaml").unlink()
    else:
        (repo / "params.yaml").write_text(params)
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "commit", "-qm", "base"], check=True)
    subprocess.run(["git", "tag", "base"], check=True)
    (repo / "params.yaml").write_text(workspace)


def with_threshold(text: str, key: str, value: str) -> str:
    """params.yaml's text with report.KEY set to value (its comments kept)."""
    changed, count = re.subn(rf"(?m)^(  {key}:) .*$", rf"\1 {value}", text)
    assert count == 1, key
    return changed


def test_unchanged_thresholds_are_the_bases_with_nothing_to_review(history: Path) -> None:
    commit_base(history, PARAMS_TEXT)
    assert thresholds("base") == (WORKSPACE, [])


def test_a_loosened_threshold_is_shown_for_review_and_never_applied(history: Path) -> None:
    commit_base(history, PARAMS_TEXT)
    (history / "params.yaml").write_text(with_threshold(PARAMS_TEXT, "max_accuracy_drop", "0.5"))
    used, review = thresholds("base")
    assert used == WORKSPACE
    assert review == [
        f"**Needs review:** this change sets report.max_accuracy_drop from "
        f"{WORKSPACE.max_accuracy_drop:g} to 0.5; the gates use the base's "
        f"{WORKSPACE.max_accuracy_drop:g} (base)."
    ]


def test_the_bases_own_values_gate_whatever_the_workspace_holds(history: Path) -> None:
    """The base as written, `1e-3` included (YAML 1.1's string, accepted as everywhere)."""
    base = with_threshold(
        with_threshold(PARAMS_TEXT, "max_accuracy_drop", "1e-3"), "quick_min_accuracy", "0.6"
    )
    commit_base(history, base)
    used, review = thresholds("base")
    assert used == ReportParams(max_accuracy_drop=0.001, quick_min_accuracy=0.6)
    assert [line.split(";")[0] for line in review] == [
        "**Needs review:** this change sets report.max_accuracy_drop from 0.001 to "
        f"{WORKSPACE.max_accuracy_drop:g}",
        "**Needs review:** this change sets report.quick_min_accuracy from 0.6 to "
        f"{WORKSPACE.quick_min_accuracy:g}",
    ]


NEW = [
    f"**Needs review:** report.max_accuracy_drop={WORKSPACE.max_accuracy_drop:g} is new in "
    "this change (base has none); the gates use it.",
    f"**Needs review:** report.quick_min_accuracy={WORKSPACE.quick_min_accuracy:g} is new in "
    "this change (base has none); the gates use it.",
]


@pytest.mark.parametrize(
    "base",
    [None, NO_REPORT, NO_REPORT + "report:\n", ""],
    ids=["no params.yaml", "no report section", "an empty report section", "an empty file"],
)
def test_a_gate_new_in_this_change_uses_its_values_and_says_so(
    history: Path, base: str | None
) -> None:
    commit_base(history, base)
    assert thresholds("base") == (WORKSPACE, NEW)


def test_a_threshold_the_base_lacks_is_new_and_the_others_stay_the_bases(
    history: Path,
) -> None:
    """As when quick_min_accuracy was added: the base has max_accuracy_drop alone."""
    base = re.sub(
        r"(?m)^  quick_min_accuracy:.*\n",
        "",
        with_threshold(PARAMS_TEXT, "max_accuracy_drop", "0.01"),
    )
    commit_base(history, base)
    used, review = thresholds("base")
    assert used == ReportParams(0.01, WORKSPACE.quick_min_accuracy)
    assert review[1:] == NEW[1:] and "from 0.01 to" in review[0]


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("report: [unclosed\n", "params.yaml at base: not valid YAML: .*"),
        (
            "- a list\n",
            r"params.yaml at base: the top level must be a mapping of sections, got \['a list'\]",
        ),
        (
            NO_REPORT + "report: 0.002\n",
            "params.yaml at base: report must be a mapping of keys, got 0.002",
        ),
        (
            with_threshold(PARAMS_TEXT, "max_accuracy_drop", "5"),
            "params.yaml at base: report.max_accuracy_drop must be <= 1, got 5",
        ),
        (
            with_threshold(PARAMS_TEXT, "quick_min_accuracy", "high"),
            "params.yaml at base: report.quick_min_accuracy must be a number, got 'high'",
        ),
    ],
    ids=["not YAML", "not a mapping", "report not a mapping", "out of range", "not a number"],
)
def test_a_base_whose_thresholds_cannot_be_read_is_one_line(
    history: Path, base: str, expected: str
) -> None:
    commit_base(history, base)
    with pytest.raises(UserError, match=f"^{expected}$") as raised:
        thresholds("base")
    assert "\n" not in str(raised.value)


def test_thresholds_name_an_unknown_base(history: Path) -> None:
    commit_base(history, PARAMS_TEXT)
    with pytest.raises(UserError, match="unknown git revision 'origin/main'"):
        thresholds("origin/main")


def test_a_base_without_metrics_skips_the_drop_gate_but_not_the_floor() -> None:
    params = ReportParams(max_accuracy_drop=0.002, quick_min_accuracy=0.5)
    assert verdict("old", None, 0.9, params, floor=False) == (
        None,
        "**Gate skipped:** old has no committed reports/metrics.json, so there is no accuracy "
        "to compare with; the report shows this run's metrics and the params diff.",
    )
    failure, sentence = verdict("old", None, 0.1, params, floor=True)
    assert failure == floor_gate(0.1, 0.5) and sentence == f"**Gate failed:** {failure}."
