"""CI's quick run: a temporary DVC experiment on a small setting, gated by the base's floor.

    python -m tools.quick --base origin/main -S prepare.train_limit=2000 -S train.epochs=2

It runs `dvc exp run --temp` with the given overrides (DVC's output goes to stderr), reads
the experiment's test accuracy from DVC (`dvc exp show --json`), prints Markdown for the job
summary (its metrics and params against HEAD, and how the floor went), then removes the
experiment. The workspace, params.yaml, dvc.lock, reports/ and `dvc exp list` are left as
they were; DVC's cache keeps the run, so an unchanged quick run is restored from the
run-cache next time. The verdict is the base revision's gate's (tools/gates.py), with its
floor, `report.quick_min_accuracy`.

Not a pipeline stage: it runs the pipeline as an experiment and reads its results.
"""

import argparse
import contextlib
import json
import tempfile
import uuid
from pathlib import Path

from rowlstm.errors import UserError, cli
from tools import experiments
from tools.dvcrun import dvc, dvc_markdown
from tools.gates import Asked, ask_base
from tools.remote import default_remote, reachable
from tools.report import review_lines


def run_experiment(name: str, overrides: list[str]) -> None:
    """`dvc exp run --temp`, its output on stderr (the job summary takes only our Markdown).
    With a default DVC remote that answers, `--pull` too: a quick run that a teammate or CI
    already made and pushed (`make push`) is restored with its files, not retrained."""
    remote = default_remote()
    pull = ["--pull"] if remote and reachable(remote[1]) else []
    dvc("exp", "run", "--temp", *pull, "-n", name, *experiments.set_args(overrides))


def experiment_accuracy(name: str) -> float:
    """test.accuracy of experiment `name`, as `dvc exp show --json` records it."""
    data = experiments.named().get(name)
    if data is None:
        raise UserError(f"experiment {name}: not in `dvc exp show`")
    try:
        return experiments.metric(data, experiments.METRICS, "test", "accuracy")
    except UserError as error:
        raise UserError(f"experiment {name}: {error}") from None


def remove_experiment(name: str) -> None:
    """`dvc exp remove name`, if the run made it (a failed one makes none)."""
    from dvc.repo import Repo
    from dvc.repo.experiments.exceptions import UnresolvedExpNamesError

    with Repo() as repo, contextlib.suppress(UnresolvedExpNamesError):
        repo.experiments.remove(exp_names=[name])


def changed_tables(name: str) -> str:
    """`dvc exp diff HEAD name` as Markdown: its metrics and params tables, those with rows."""
    tables = dvc_markdown("exp", "diff", "HEAD", name).split("\n\n")
    kept = [table.strip() for table in tables if table.strip().count("\n") > 1]
    return "\n\n".join(kept) or "The same metrics and params as HEAD."


def quick(overrides: list[str], base: str) -> list[str]:
    """Run, report, remove the experiment; the base's gate's failures ([] if it passed)."""
    reviews = review_lines(base)  # first: a bad base is one line before any training
    name = f"quick-{uuid.uuid4().hex[:8]}"
    try:
        run_experiment(name, overrides)
        changes = changed_tables(name)
        accuracy = experiment_accuracy(name)
    finally:
        remove_experiment(name)
    asked = judged(accuracy, base)
    print(
        f"## Quick run ({' '.join(overrides) or 'params.yaml as it is'}) against HEAD\n\n"
        f"{changes}\n\n" + "".join(f"{line}\n\n" for line in reviews) + asked.markdown,
        end="",
    )
    return asked.failures


def judged(accuracy: float, base: str) -> Asked:
    """The base's gate on the quick run's accuracy (written where the judge can read it)."""
    with tempfile.TemporaryDirectory(prefix="quick-") as folder:
        metrics = Path(folder) / "metrics.json"
        metrics.write_text(json.dumps({"test": {"accuracy": accuracy}}))
        return ask_base(base, "--quick", str(metrics))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="main", help="revision whose floor gates (main)")
    parser.add_argument(
        "-S", dest="overrides", action="append", default=[], help="param=value, as dvc exp run"
    )
    args = parser.parse_args()
    failures = quick(args.overrides, args.base)
    if failures:
        raise UserError("\n".join(failures))


if __name__ == "__main__":
    cli(main)
