"""Accuracy as a distribution: the pipeline over several seeds, through DVC's queue.

    make seeds                                         # SEEDS="42 1 2", params.yaml as it is
    make seeds NAME=fast SET="-S train.epochs=15"      # a candidate recipe, the same seeds
    python -m tools.seeds --name NAME --seeds 42 1 2 [-S key=value ...] [--table]

One experiment per seed, named NAME-seedS, queued with `dvc exp run --queue -S
train.seed=S` (and the -S given), run one at a time (`dvc queue start`: two trainings on
two cores only slow each other), then one table of test accuracy, test errors and the
best validation accuracy: each seed's, and their mean, standard deviation (n-1), min and
max, read from the experiments' own metrics (`dvc exp show --json`), never from logs.

An experiment already made under its name (on HEAD or the commits just before it, the
newest) is read, not run again; --table only reads. Seed 42 with params.yaml as it is is
the committed run: DVC restores it from the run-cache on the machine that made it. The
experiments stay (`dvc exp show`, `dvc exp remove`).

Not a pipeline stage: it runs the pipeline as DVC experiments, never in the workspace, and
reads their metrics.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml

from rowlstm.errors import UserError, cli
from tools import experiments
from tools.dvcrun import dvc
from tools.experiments import METRICS, SUMMARY, metric, set_args

POLL = 10.0  # seconds between looks at the queue


def queue(names: dict[int, str], overrides: list[str]) -> None:
    """`dvc exp run --queue` for each seed, then the queue started with one worker."""
    sets = set_args(overrides)
    for seed, name in names.items():
        dvc("exp", "run", "--queue", "-n", name, "-S", f"train.seed={seed}", *sets)
    # Its worker outlives the command and would hold on to our output: it gets none.
    dvc("queue", "start", "--jobs", "1", quiet=True)


def wait(names: set[str]) -> None:
    """Until none of these experiments is queued or running; a failed one stops it. Then
    the queue's workers are stopped, unless another experiment still needs them."""
    from dvc.repo import Repo

    while True:
        with Repo() as repo:
            tasks = {t["name"]: t["status"] for t in repo.experiments.celery_queue.status()}
        busy = {name for name, status in tasks.items() if status in ("Queued", "Running")}
        failed = sorted(name for name in names if tasks.get(name) == "Failed")
        if failed or not busy & names:
            if not busy:  # our worker would idle on, a process left behind: stop it
                dvc("queue", "stop", quiet=True)
            if failed:
                raise UserError(f"{', '.join(failed)} failed: `dvc queue logs NAME` says why")
            return
        print(f"waiting for {', '.join(sorted(busy & names))}", file=sys.stderr)
        time.sleep(POLL)


def seed_table(names: dict[int, str], found: dict[str, dict]) -> list[dict[str, float]]:
    """One line per seed, read from its experiment's metrics."""
    missing = [name for name in names.values() if name not in found]
    if missing:
        raise UserError(f"no experiment {', '.join(missing)} in `dvc exp show`")
    return [seed_line(seed, name, found[name]) for seed, name in names.items()]


def seed_line(seed: int, name: str, data: dict) -> dict[str, float]:
    try:
        return {
            "seed": seed,
            "test accuracy": metric(data, METRICS, "test", "accuracy"),
            "test errors": metric(data, METRICS, "test", "errors"),
            "best val accuracy": metric(data, SUMMARY, "training", "best_val_accuracy"),
        }
    except UserError as error:
        raise UserError(f"{name}: {error} (queued or running? `dvc queue status`)") from None


def changes(names: dict[int, str], found: dict[str, dict]) -> str:
    """What the experiments set apart from params.yaml as it is now, seeds aside."""
    current = flat(yaml.safe_load(Path("params.yaml").read_text()))
    differ: set[str] = set()
    for name in names.values():
        params = flat(found[name]["params"]["params.yaml"]["data"])
        differ |= {f"{k}={v}" for k, v in params.items() if current.get(k) != v}
    differ = {change for change in differ if not change.startswith("train.seed=")}
    return " ".join(sorted(differ)) or "params.yaml as it is"


def flat(tree: dict, prefix: str = "") -> dict[str, object]:
    """{"train": {"seed": 1}} -> {"train.seed": 1}"""
    leaves: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            leaves |= flat(value, f"{prefix}{key}.")
        else:
            leaves[f"{prefix}{key}"] = value
    return leaves


SUMMARIES = {"mean": statistics.mean, "sd": statistics.stdev, "min": min, "max": max}


def markdown(table: list[dict[str, float]], title: str) -> str:
    """Each seed's line, then the mean, sd, min and max of each column."""
    columns = [key for key in table[0] if key != "seed"]
    lines = [
        f"{title}\n",
        "| seed | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for row in table:
        lines.append(
            f"| {row['seed']} | " + " | ".join(formatted(c, row[c]) for c in columns) + " |"
        )
    for label, summary in SUMMARIES.items():
        exact = label in ("min", "max")  # one seed's value; a mean or sd is not a count
        values = [formatted(c, summary([row[c] for row in table]), exact) for c in columns]
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def formatted(column: str, value: float, exact: bool = True) -> str:
    """Rates as percentages; counts whole, or to a tenth when averaged."""
    if column.endswith("errors"):
        return f"{value:.0f}" if exact else f"{value:.1f}"
    return f"{value:.2%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="default", help="experiments' name prefix")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("-S", dest="overrides", action="append", default=[])
    parser.add_argument("--table", action="store_true", help="only read existing experiments")
    args = parser.parse_args()
    if len(set(args.seeds)) < 2:
        raise UserError("--seeds: give at least two different seeds (a spread needs two)")
    names = {seed: f"{args.name}-seed{seed}" for seed in args.seeds}
    if not args.table:
        todo = {s: n for s, n in names.items() if n not in experiments.named()}
        if todo:
            queue(todo, args.overrides)
            wait(set(todo.values()))
    found = experiments.named()
    print(markdown(seed_table(names, found), f"{args.name}: {changes(names, found)}"))


if __name__ == "__main__":
    cli(main)
