"""DVC's experiments for the quick run and the seeds table, as `dvc exp show --json`
records them, asked in this process (each `dvc` command costs a second of start-up)."""

from typing import Any

from rowlstm.errors import UserError

METRICS = "reports/metrics.json"
SUMMARY = "reports/train.json"
COMMITS = 10  # HEAD and the commits before it whose experiments are read


def set_args(overrides: list[str]) -> list[str]:
    """["a=1", "b=2"] -> ["-S", "a=1", "-S", "b=2"], as `dvc exp run` takes them."""
    return [arg for override in overrides for arg in ("-S", override)]


def named() -> dict[str, dict[str, Any]]:
    """Every named experiment of HEAD's and of the commits just before it (a run queued
    before a commit is still found after it): its record ("data": metrics, params, ...),
    by name, the newest where two share one, as `dvc exp show --json -n COMMITS` gives it."""
    from dvc.repo import Repo

    with Repo() as repo:
        baselines = [baseline.dumpd() for baseline in repo.experiments.show(num=COMMITS)]
    found: dict[str, dict[str, Any]] = {}
    for baseline in baselines:  # HEAD first
        for group in baseline.get("experiments") or []:
            for rev in group["revs"]:
                if rev.get("name"):
                    found.setdefault(rev["name"], rev["data"])
    return found


def metric(data: dict[str, Any], path: str, *keys: str) -> float:
    """One metric of an experiment's record, e.g. metric(data, METRICS, "test", "accuracy")."""
    try:
        value = data["metrics"][path]["data"]
        for key in keys:
            value = value[key]
        return float(value)
    except (KeyError, TypeError, ValueError):
        raise UserError(f"no {'.'.join(keys)} in {path}") from None
