"""DVC's experiments as `dvc exp show --json` records them, asked in this process (each
`dvc` command costs a second of start-up): what the quick run and the seeds table read."""

from typing import Any

from rowlstm.errors import UserError

METRICS = "reports/metrics.json"
SUMMARY = "reports/train.json"


def shown() -> dict[str, dict[str, Any]]:
    """Every named experiment of HEAD's: its record ("data": metrics, params, ...), by
    name, as `dvc exp show --json` gives it."""
    from dvc.repo import Repo

    with Repo() as repo:
        baselines = [baseline.dumpd() for baseline in repo.experiments.show()]
    return {
        rev["name"]: rev["data"]
        for baseline in baselines
        for group in baseline.get("experiments") or []
        for rev in group["revs"]
        if rev.get("name")
    }


def metric(data: dict[str, Any], path: str, *keys: str) -> float:
    """One metric of an experiment's record, e.g. metric(data, METRICS, "test", "accuracy")."""
    try:
        value = data["metrics"][path]["data"]
        for key in keys:
            value = value[key]
        return float(value)
    except (KeyError, TypeError, ValueError):
        raise UserError(f"no {'.'.join(keys)} in {path}") from None
