"""CI's quick run: a temporary DVC experiment on a small setting, gated by the base's floor.

    python -m stages.quick --base origin/main -S prepare.train_limit=2000 -S train.epochs=2

It runs `dvc exp run --temp` with the given overrides (DVC's output goes to stderr), reads
the experiment's test accuracy from DVC (`dvc exp show --json`), prints Markdown for the job
summary (its metrics and params against HEAD, and how the floor went), then removes the
experiment. The workspace, params.yaml, dvc.lock, reports/ and `dvc exp list` are left as
they were; DVC's cache keeps the run, so an unchanged quick run is restored from the
run-cache next time. The floor (`report.quick_min_accuracy`) is the base revision's, as
every gate's threshold is (stages/report.py).

Not a pipeline stage: it runs the pipeline as an experiment and reads its results.
"""

import argparse
import json
import subprocess
import sys
import uuid

from stages.errors import UserError, cli
from stages.report import dvc_markdown, thresholds, verdict


def dvc(*args: str, check: bool = True, shown: bool = False) -> subprocess.CompletedProcess:
    """A `dvc` command with this interpreter's DVC: its stdout captured, or shown on stderr
    (the job summary takes only our Markdown); its stderr passes through."""
    stdout = sys.stderr if shown else subprocess.PIPE
    result = subprocess.run([sys.executable, "-m", "dvc", *args], stdout=stdout, text=True)
    if check and result.returncode:
        raise UserError(f"dvc {' '.join(args)} failed (its output is above)")
    return result


def experiment_accuracy(name: str) -> float:
    """test.accuracy of experiment `name`, as `dvc exp show --json` records it."""
    revs = [
        rev
        for baseline in json.loads(dvc("exp", "show", "--json").stdout)
        for group in baseline.get("experiments") or []
        for rev in group["revs"]
    ]
    try:
        (data,) = [rev["data"] for rev in revs if rev["name"] == name]
        return float(data["metrics"]["reports/metrics.json"]["data"]["test"]["accuracy"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"experiment {name}: no test.accuracy in `dvc exp show`") from None


def changed_tables(name: str) -> str:
    """`dvc exp diff HEAD name` as Markdown: its metrics and params tables, those with rows."""
    tables = dvc_markdown("exp", "diff", "HEAD", name).split("\n\n")
    kept = [table.strip() for table in tables if table.strip().count("\n") > 1]
    return "\n\n".join(kept) or "The same metrics and params as HEAD."


def quick(overrides: list[str], base: str) -> str | None:
    """Run, report, remove the experiment; the floor's failure message, or None."""
    params, reviews = thresholds(base)  # first: a bad base is one line before any training
    name = f"quick-{uuid.uuid4().hex[:8]}"
    sets = [arg for override in overrides for arg in ("-S", override)]
    try:
        dvc("exp", "run", "--temp", "-n", name, *sets, shown=True)
        accuracy = experiment_accuracy(name)
        changes = changed_tables(name)
    finally:
        dvc("exp", "remove", name, check=False)
    failure, sentence = verdict(base, None, accuracy, params, floor=True)
    print(
        f"## Quick run ({' '.join(overrides) or 'params.yaml as it is'}) against HEAD\n\n"
        f"{changes}\n\n" + "".join(f"{line}\n\n" for line in reviews) + f"{sentence}\n"
    )
    return failure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="main", help="revision whose floor gates (main)")
    parser.add_argument(
        "-S", dest="overrides", action="append", default=[], help="param=value, as dvc exp run"
    )
    args = parser.parse_args()
    failure = quick(args.overrides, args.base)
    if failure:
        raise UserError(failure)


if __name__ == "__main__":
    cli(main)
