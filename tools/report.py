"""The metrics report CI writes into its job summary, and the gates DVC lacks.

`dvc metrics diff` shows how a run compares with the base branch but always exits 0, trusts
whatever metrics are committed, and drops a metric it cannot load with only a warning. This
prints the diff as Markdown (the same text locally, via `make report`, as in CI's job
summary) and fails with one line per problem, in this order:

1. dvc.lock does not belong to the code, params and commands beside it (tools/lockcheck.py):
   the committed metrics describe another pipeline, so no comparison can be trusted;
2. a metrics file declared in dvc.yaml cannot be loaded here (a DVC-cached metric in a
   fresh clone): its rows would silently vanish from the diff;
3. the gate: test accuracy fell more than `report.max_accuracy_drop` below the base
   branch's committed run (CI's quick run has its floor instead: tools/quick.py).

The gate's thresholds are the base revision's (`report` in its params.yaml), never the
workspace's: a pull request that loosened them would otherwise pass its own worse run. A
threshold the workspace changes is shown as needing review; one the base lacks (the gate is
new in this change) is taken from the workspace and shown likewise. A base without committed
metrics skips the drop gate with a warning, and the report still shows this run's metrics and
the params diff.

Not a pipeline stage: it reads results, it never produces any, so dvc.yaml does not list it.
"""

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from rowlstm.errors import UserError, cli, one_line
from rowlstm.params import ReportParams, load_params, validate
from tools.lockcheck import stale_stages

METRICS = Path("reports/metrics.json")
PARAMS = Path("params.yaml")
GATED = "test.accuracy"
TOLERANCE = "report.max_accuracy_drop"
FLOOR = "report.quick_min_accuracy"


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True)


def committed(ref: str, path: Path) -> str | None:
    """path's text as committed at ref; None if ref has no such file."""
    if git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode:
        raise UserError(
            f"unknown git revision {ref!r} (in CI, check out with fetch-depth: 0 "
            "so the base branch is there)"
        )
    shown = git("show", f"{ref}:{path.as_posix()}")
    return None if shown.returncode else shown.stdout


def committed_accuracy(ref: str) -> float | None:
    """test.accuracy in reports/metrics.json as committed at ref; None if ref has no such file."""
    text = committed(ref, METRICS)
    return None if text is None else accuracy_of(text, f"{METRICS} at {ref}")


@dataclasses.dataclass(frozen=True)
class Gates:
    """params.yaml's report section alone, so that errors name keys as report.KEY: the base's
    other sections follow the base's schema, which may not be this code's."""

    report: ReportParams


def thresholds(ref: str) -> tuple[ReportParams, list[str]]:
    """(the thresholds to gate with, Markdown lines naming what a reviewer must check).

    A change must not set the bar it is judged by: each threshold is ref's (the base's), and
    a workspace value that differs is shown for review, never applied. Where ref has no such
    key (the gate is new in this change) the workspace's value is used and shown for review.
    """
    here = load_params(PARAMS).report
    base = base_thresholds(ref)
    merged = {"report": dataclasses.asdict(here) | base}
    used = validate(merged, Gates, f"{PARAMS} at {ref}").report
    return used, review_lines(base, here, used, ref)


def base_thresholds(ref: str) -> dict[str, Any]:
    """The report keys that ref's params.yaml sets, as written ({} if it has none)."""
    where = f"{PARAMS} at {ref}"
    try:
        raw = yaml.safe_load(committed(ref, PARAMS) or "") or {}
    except yaml.YAMLError as error:
        raise UserError(f"{where}: not valid YAML: {one_line(error)}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{where}: the top level must be a mapping of sections, got {raw!r}")
    section = raw.get("report", {})
    if not isinstance(section, dict | None):  # None: `report:` with every key commented out
        raise UserError(f"{where}: report must be a mapping of keys, got {section!r}")
    keys = {spec.name for spec in dataclasses.fields(ReportParams)}
    return {key: value for key, value in (section or {}).items() if key in keys}


def review_lines(
    base: dict[str, Any], here: ReportParams, used: ReportParams, ref: str
) -> list[str]:
    """One Markdown line per threshold the workspace adds or changes against ref."""
    lines = []
    for spec in dataclasses.fields(ReportParams):
        key, new, old = f"report.{spec.name}", getattr(here, spec.name), getattr(used, spec.name)
        if spec.name not in base:
            lines.append(
                f"**Needs review:** {key}={new:g} is new in this change ({ref} has none); "
                "the gates use it."
            )
        elif new != old:
            lines.append(
                f"**Needs review:** this change sets {key} from {old:g} to {new:g}; "
                f"the gates use the base's {old:g} ({ref})."
            )
    return lines


def accuracy_of(text: str, where: str) -> float:
    """test.accuracy from a metrics file's text; where names the file in errors."""
    try:
        return float(json.loads(text)["test"]["accuracy"])
    except json.JSONDecodeError as error:
        raise UserError(f"{where}: not valid JSON ({error})") from None
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{where}: no number at test.accuracy") from None


def gate(base: float | None, head: float, tolerance: float, ref: str) -> str | None:
    """The failure message when head's accuracy fell more than tolerance below base, else None.

    Rounded to 9 places first, so that 0.9879 - 0.9859 counts as exactly 0.002 and passes.
    """
    if base is None or round(base - head, 9) <= tolerance:
        return None
    return f"{GATED} dropped from {base:g} ({ref}) to {head:g}, more than {TOLERANCE}={tolerance:g}"


def floor_gate(head: float, floor: float) -> str | None:
    """The failure message when head's accuracy is below the quick run's floor, else None."""
    if head >= floor:
        return None
    return f"{GATED} {head:g} is below {FLOOR}={floor:g}: the pipeline has stopped learning"


def unloadable_metrics(ref: str) -> dict[str, list[str]]:
    """{revision: ["file (why)", ...]} for the declared metrics DVC cannot load, here
    ("workspace") and at ref; `dvc metrics diff` would drop their rows with a warning."""
    from dvc.repo import Repo

    with Repo() as repo:
        shown = repo.metrics.show(revs=[ref], hide_workspace=False)
    found = {}
    for rev, result in shown.items():
        files = {"its metrics": result} if "error" in result else result.get("data", {})
        failed = [
            f"{name} ({one_line(got['error'])})" for name, got in files.items() if "error" in got
        ]
        if failed:
            found[rev] = failed
    return found


def input_problems(ref: str) -> tuple[list[str], list[str]]:
    """(what makes any comparison untrustworthy, one line each; notes about ref's metrics)."""
    stale = stale_stages()
    if stale:
        return [f"dvc.lock is stale, {line} (run `dvc repro`, commit)" for line in stale], []
    broken = unloadable_metrics(ref)
    problems = [
        f"declared metric cannot be loaded: {file} (keep metrics in git: cache: false)"
        for file in broken.pop("workspace", [])
    ]
    notes = [
        f"At {ref}, DVC cannot load {', '.join(files)}: no base values."
        for files in broken.values()
    ]
    return problems, notes


def dvc_markdown(*args: str) -> str:
    """A `dvc ... --md` table ("" when it has no rows), run with this interpreter's DVC so
    PATH does not matter."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args, "--md"], capture_output=True, text=True
    )
    if result.returncode:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"dvc {' '.join(args)} failed: {last}")
    table = result.stdout.strip()
    return table if len(table.splitlines()) > 2 else ""


def verdict(
    ref: str, base: float | None, head: float, params: ReportParams, floor: bool
) -> tuple[str | None, str]:
    """(failure message or None, the Markdown sentence saying how the gate went)."""
    if floor:
        failure = floor_gate(head, params.quick_min_accuracy)
        passed = f"{GATED} {head:g}, floor {FLOOR}={params.quick_min_accuracy:g}"
    elif base is None:
        return None, f"**Gate skipped:** {no_base_metrics(ref)}."
    else:
        failure = gate(base, head, params.max_accuracy_drop, ref)
        passed = (
            f"{GATED} {head:g} against {base:g} on {ref}, "
            f"allowed drop {TOLERANCE}={params.max_accuracy_drop:g}"
        )
    if failure:
        return failure, f"**Gate failed:** {failure}."
    return None, f"**Gate passed:** {passed}."


def no_base_metrics(ref: str) -> str:
    """Why the drop gate was skipped: said on stderr and in the Markdown alike."""
    return (
        f"{ref} has no committed {METRICS}, so there is no accuracy to compare with; "
        "the report shows this run's metrics and the params diff"
    )


def run(ref: str, metrics_path: Path) -> str | None:
    """Print the report; return the gate's failure message, or None when it passed."""
    base = committed_accuracy(ref)  # first: it names an unknown ref in one line
    params, reviews = thresholds(ref)
    problems, notes = input_problems(ref)
    if problems:
        print("**Gate failed:**\n\n" + "".join(f"- {line}\n" for line in problems))
        raise UserError("\n".join(problems))
    if not metrics_path.exists():
        raise UserError(f"{metrics_path}: not found (run `dvc repro` first)")
    head = accuracy_of(metrics_path.read_text(), str(metrics_path))
    failure, sentence = verdict(ref, base, head, params, floor=False)
    if base is None:
        print(f"warning: {no_base_metrics(ref)}", file=sys.stderr)
    metrics = dvc_markdown("metrics", "diff", ref, "--all") or f"No metrics at {ref} or here."
    changed = dvc_markdown("params", "diff", ref) or "No param changed."
    print(
        f"## Metrics: workspace against {ref}\n\n{metrics}\n\n"
        + "".join(f"{note}\n\n" for note in notes)
        + f"## Params: workspace against {ref}\n\n{changed}\n\n"
        + "".join(f"{line}\n\n" for line in reviews)
        + f"{sentence}\n"
    )
    return failure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="main", help="git revision to compare with (main)")
    args = parser.parse_args()
    failure = run(args.base, METRICS)
    if failure:
        raise UserError(failure)


if __name__ == "__main__":
    cli(main)
