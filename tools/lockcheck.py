"""Does dvc.lock still belong to the code, params and commands beside it?

Committed results are only as fresh as the committed dvc.lock: edit `train.units`, a stage
file or a `cmd`, commit without `dvc repro`, and reports/metrics.json describes a pipeline
that no longer exists. This asks DVC itself, stage by stage, with the rule `dvc repro
--allow-missing` uses: a stage is stale when its command, params, code or git-tracked
outputs differ from dvc.lock, or when dvc.lock records other inputs than its upstream
stage's outputs. Data that is merely absent (CI's fresh clone has no data and no DVC
cache) does not count.

Why DVC's Python API and not the command: `dvc repro --dry --allow-missing` stops at the
first stale stage with "No such file or directory" when its inputs are absent, so it
cannot list every stale stage in a fresh clone; `dvc status` cannot tell absent data from
changed data there.
"""

from typing import TYPE_CHECKING

from rowlstm.errors import one_line

if TYPE_CHECKING:
    from dvc.stage import Stage

MISSING = ("deleted", "not in cache")  # absent data: nothing is known to have changed


def stale_stages() -> list[str]:
    """One line per stale stage, naming what changed; [] when dvc.lock is current."""
    from dvc.repo import Repo

    with Repo() as repo, repo.lock:  # the repository around the working directory
        graph = repo.index.graph
        lines = []
        for stage in repo.index.stages:
            upstream = list(graph.successors(stage))  # DVC's edges point at dependencies
            if not any(dep.hash_info for dep in stage.deps):
                lines.append(f"{stage.addressing}: not in dvc.lock (never run)")
            elif stage.changed(allow_missing=True, upstream=upstream):
                reasons = describe(stage.status()[stage.addressing], stage, upstream)
                lines.append(f"{stage.addressing}: {'; '.join(reasons)}")
        return lines


def describe(changes: list, stage: "Stage", upstream: list["Stage"]) -> list[str]:
    """What `dvc status` says changed, less absent data, plus inputs that dvc.lock records
    differently from the upstream stage's outputs (the one change absent data can hide)."""
    reasons, named = [], set()
    for change in changes:
        if change == "changed command":
            reasons.append("its cmd in dvc.yaml changed")
            continue
        for kind, entries in change.items():
            for path, status in entries.items():
                if isinstance(status, dict):  # a params file: {key or section: status}
                    for key, what in status.items():
                        leaves = what == "modified" and changed_leaves(stage, path, key)
                        changed = leaves or {key: what}
                        reasons += [f"{path} {leaf} {how}" for leaf, how in changed.items()]
                elif status not in MISSING:
                    reasons.append(f"{'output ' if kind == 'changed outs' else ''}{path} {status}")
                    named.add(path)
    reasons += [
        f"{dep} in dvc.lock is not what {up.addressing} produced"
        for dep in stage.deps
        if str(dep) not in named
        for up in upstream
        for out in up.outs
        if dep.fs_path == out.fs_path and dep.hash_info != out.hash_info
    ]
    return reasons or ["dvc.lock does not match its definition in dvc.yaml"]


def changed_leaves(stage: "Stage", path: str, key: str) -> dict[str, str]:
    """The keys under a tracked section whose values differ from dvc.lock's, each with how:
    DVC reports a whole section as one "modified" entry, which would not say what changed."""
    dep = next(dep for dep in stage.params if str(dep) == path)
    locked = _leaves((dep.hash_info.value or {}).get(key), key)
    current = _leaves(dep.read_params().get(key), key)
    return {
        leaf: "new" if leaf not in locked else "deleted" if leaf not in current else "modified"
        for leaf in sorted(locked.keys() | current.keys())
        if locked.get(leaf) != current.get(leaf)
    }


def _leaves(value: object, prefix: str) -> dict[str, object]:
    """A params section as {dotted key: value}; a plain value as {prefix: value}."""
    if not isinstance(value, dict):
        return {prefix: value}
    return {
        leaf: inner
        for name, child in value.items()
        for leaf, inner in _leaves(child, f"{prefix}.{name}").items()
    }


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
