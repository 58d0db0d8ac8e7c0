"""The metrics report CI writes into a pull request's summary, and the gates DVC lacks.

`dvc metrics diff` shows how a run compares with the base branch but always exits 0, trusts
whatever metrics are committed, and drops a metric it cannot load with only a warning. This
prints the diff as Markdown (the same text locally, via `make report`, as in CI's job
summary) and fails with one line per problem, in this order:

1. dvc.lock does not belong to the code, params and commands beside it (stages/lockcheck.py):
   the committed metrics describe another pipeline, so no comparison can be trusted;
2. a metrics file declared in dvc.yaml cannot be loaded here (a DVC-cached metric in a
   fresh clone): its rows would silently vanish from the diff;
3. the gate: test accuracy fell more than `report.max_accuracy_drop` below the base
   branch's committed run, or, with --floor (CI's quick run), is below
   `report.quick_min_accuracy`.

A base without committed metrics skips the drop gate with a warning, and the report still
shows this run's metrics and the params diff.

Not a pipeline stage: it reads results, it never produces any, so dvc.yaml does not list it.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from stages.errors import UserError, cli, one_line
from stages.lockcheck import stale_stages
from stages.params import ReportParams, load_params

METRICS = Path("reports/metrics.json")
GATED = "test.accuracy"
TOLERANCE = "report.max_accuracy_drop"
FLOOR = "report.quick_min_accuracy"


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True)


def committed_accuracy(ref: str) -> float | None:
    """test.accuracy in reports/metrics.json as committed at ref; None if ref has no such file."""
    if git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode:
        raise UserError(
            f"unknown git revision {ref!r} (in CI, check out with fetch-depth: 0 "
            "so the base branch is there)"
        )
    shown = git("show", f"{ref}:{METRICS.as_posix()}")
    if shown.returncode:
        return None
    return accuracy_of(shown.stdout, f"{METRICS} at {ref}")


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


def run(ref: str, metrics_path: Path, params: ReportParams, floor: bool = False) -> str | None:
    """Print the report; return the gate's failure message, or None when it passed."""
    base = committed_accuracy(ref)  # first: it names an unknown ref in one line
    problems, notes = input_problems(ref)
    if problems:
        print("**Gate failed:**\n\n" + "".join(f"- {line}\n" for line in problems))
        raise UserError("\n".join(problems))
    if not metrics_path.exists():
        raise UserError(f"{metrics_path}: not found (run `dvc repro` first)")
    head = accuracy_of(metrics_path.read_text(), str(metrics_path))
    failure, sentence = verdict(ref, base, head, params, floor)
    if base is None and not floor:
        print(f"warning: {no_base_metrics(ref)}", file=sys.stderr)
    metrics = dvc_markdown("metrics", "diff", ref, "--all") or f"No metrics at {ref} or here."
    changed = dvc_markdown("params", "diff", ref) or "No param changed."
    print(
        f"## Metrics: workspace against {ref}\n\n{metrics}\n\n"
        + "".join(f"{note}\n\n" for note in notes)
        + f"## Params: workspace against {ref}\n\n{changed}\n\n{sentence}\n"
    )
    return failure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="main", help="git revision to compare with (main)")
    parser.add_argument(
        "--floor", action="store_true", help=f"gate on {FLOOR} (CI's quick run) instead"
    )
    args = parser.parse_args()
    params = load_params()
    failure = run(args.base, METRICS, params.report, args.floor)
    if failure:
        raise UserError(failure)


if __name__ == "__main__":
    cli(main)
