"""The metrics report CI writes into a pull request's summary, and the gate DVC lacks.

`dvc metrics diff` shows how a run compares with the base branch but always exits 0, so a
change that quietly costs accuracy would pass CI. This prints the diff as Markdown (the same
text locally, via `make report`, as in CI's job summary) and then fails, with one line naming
the metric, both values and the tolerance, when test accuracy fell more than
`report.max_accuracy_drop` below the base branch's committed run.

Not a pipeline stage: it reads results, it never produces any, so dvc.yaml does not list it.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from stages.errors import UserError, cli
from stages.params import load_params

METRICS = Path("reports/metrics.json")
GATED = "test.accuracy"
TOLERANCE = "report.max_accuracy_drop"


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


def render(ref: str, base: float | None, head: float, tolerance: float, failure: str | None) -> str:
    """The whole report as Markdown: metrics diff, params diff, and the gate's verdict."""
    metrics = dvc_markdown("metrics", "diff", ref, "--all") or f"No metrics at {ref} or here."
    params = dvc_markdown("params", "diff", ref) or "No param changed."
    if failure:
        verdict = f"**Gate failed:** {failure}."
    elif base is None:
        verdict = f"**Gate skipped:** {ref} has no committed {METRICS}."
    else:
        verdict = (
            f"**Gate passed:** {GATED} {head:g} against {base:g} on {ref}, "
            f"allowed drop {TOLERANCE}={tolerance:g}."
        )
    return (
        f"## Metrics: workspace against {ref}\n\n{metrics}\n\n"
        f"## Params: workspace against {ref}\n\n{params}\n\n{verdict}\n"
    )


def run(ref: str, metrics_path: Path, tolerance: float) -> str | None:
    """Print the report; return the gate's failure message, or None when it passed."""
    if not metrics_path.exists():
        raise UserError(f"{metrics_path}: not found (run `dvc repro` first)")
    head = accuracy_of(metrics_path.read_text(), str(metrics_path))
    base = committed_accuracy(ref)
    failure = gate(base, head, tolerance, ref)
    print(render(ref, base, head, tolerance, failure))
    return failure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="main", help="git revision to compare with (main)")
    args = parser.parse_args()
    params = load_params()
    failure = run(args.base, METRICS, params.report.max_accuracy_drop)
    if failure:
        raise UserError(failure)


if __name__ == "__main__":
    cli(main)
