"""The gates' arithmetic and their errors, without DVC (tests/test_gate.py runs them for real)."""

import pytest

from stages.errors import UserError
from stages.params import ReportParams
from stages.report import accuracy_of, committed_accuracy, floor_gate, gate, verdict


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


def test_a_base_without_metrics_skips_the_drop_gate_but_not_the_floor() -> None:
    params = ReportParams(max_accuracy_drop=0.002, quick_min_accuracy=0.5)
    assert verdict("old", None, 0.9, params, floor=False) == (
        None,
        "**Gate skipped:** old has no committed reports/metrics.json, so there is no accuracy "
        "to compare with; the report shows this run's metrics and the params diff.",
    )
    failure, sentence = verdict("old", None, 0.1, params, floor=True)
    assert failure == floor_gate(0.1, 0.5) and sentence == f"**Gate failed:** {failure}."
