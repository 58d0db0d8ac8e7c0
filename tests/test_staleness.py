"""The staleness table, checked row by row against DVC's status and the real `dvc repro`.

The table in docs/guarantees.md is the one source: this test parses it, checks that it covers every
leaf key of params.yaml and every code file under stages/, and then, for each row, edits
that one thing in the reproduced e2e repo and asserts that DVC's status (asked in this
process, as `dvc status` asks it) names exactly the "stale at once" stages. For one row
per pair of columns (a params key where there is one) it also runs `dvc repro` and
asserts that it runs those stages plus exactly the downstream stages whose input bytes
changed (so every downstream stage it skips was truly unaffected).
"""

import json
import re
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from rowlstm.params import Params, ReportParams
from tests.e2e import ran, set_params, sh, stale
from tests.helpers import PACKAGES, ROOT

TABLE = re.compile(r"<!-- staleness:start -->(.*?)<!-- staleness:end -->", re.S)
ROW = re.compile(r"^\| (?:any )?`([^`]+)`(?: key)? \| ([^|]+) \| ([^|]+) \|$", re.M)


def stage_set(cell: str) -> frozenset[str]:
    return frozenset() if cell.strip() == "—" else frozenset(cell.strip().split(", "))


def table() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    section = TABLE.search((ROOT / "docs/guarantees.md").read_text())
    assert section, "docs/guarantees.md lacks the staleness table markers"
    rows = [
        (key, now, later)
        for row in ROW.findall(section.group(1))
        for key, now, later in expanded(*row)
    ]
    subjects = [subject for subject, _, _ in rows]
    assert len(subjects) == len(set(subjects)), "a row appears twice"
    return {subject: (stage_set(now), stage_set(later)) for subject, now, later in rows}


def expanded(subject: str, now: str, later: str) -> list[tuple[str, str, str]]:
    """A `SECTION.*` row as one row per key of that section in params.yaml."""
    if not subject.endswith(".*"):
        return [(subject, now, later)]
    section = subject.removesuffix(".*")
    keys = yaml.safe_load((ROOT / "params.yaml").read_text())[section]
    return [(f"{section}.{key}", now, later) for key in keys]


def leaf_keys(node: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in node.items():
        if isinstance(value, dict):
            keys |= leaf_keys(value, f"{prefix}{key}.")
        else:
            keys.add(prefix + key)
    return keys


def descendants(stages: frozenset[str]) -> frozenset[str]:
    """Stages downstream of `stages` in dvc.yaml's graph (outs feeding deps), excluding them."""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]

    def outs(name: str) -> list[str]:
        return [next(iter(o)) if isinstance(o, dict) else o for o in pipeline[name].get("outs", [])]

    found: set[str] = set()
    frontier = set(stages)
    while frontier:
        produced = [path for name in frontier for path in outs(name)]
        frontier = {
            name
            for name, stage in pipeline.items()
            if any(dep == p or dep.startswith(p + "/") for dep in stage["deps"] for p in produced)
        } - found
        found |= frontier
    return frozenset(found - stages)


def test_table_covers_every_param_key_and_code_file_and_nothing_else() -> None:
    params = leaf_keys(yaml.safe_load((ROOT / "params.yaml").read_text()))
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    sections = {section for stage in pipeline.values() for section in stage.get("params", [])}
    declared = {key for key in params if key.split(".")[0] in sections}
    gates = {f"report.{f.name}" for f in fields(ReportParams)}  # read by tools/report.py
    unread = sorted(params - declared - gates)
    assert not unread, f"params.yaml keys read by no stage: {', '.join(unread)}"
    code = {str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).glob("*.py")}
    assert set(table()) == params | code | {"rowlstm/mnist.json"}


@pytest.mark.parametrize("subject", sorted(table()))
def test_the_downstream_column_is_the_pipeline_graph(subject: str) -> None:
    now, later = table()[subject]
    assert later == descendants(now)


def edited(key: str, value: object) -> object:
    """A different valid value for a params key, of the same kind."""
    section, name = key.split(".")
    cls = next(f.type for f in fields(Params) if f.name == section)
    limits = next(f.metadata for f in fields(cls) if f.name == name)
    if isinstance(value, list):  # a dead mirror first: same verified files in the end
        return ["file:///nonexistent-mirror/", *value]
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return next(choice for choice in limits["choices"] if choice != value)
    if isinstance(value, int):
        return value + 1
    return value / 2 if value else 0.1


def edit(repo: Path, subject: str) -> None:
    path = repo / subject
    if subject.endswith(".py"):
        path.write_text(path.read_text() + "\n_STALENESS_PROBE = None\n")
    elif subject.endswith(".json"):
        path.write_text(json.dumps(json.loads(path.read_text()), indent=4) + "\n")
    else:
        section, name = subject.split(".")
        current = yaml.safe_load((repo / "params.yaml").read_text())[section][name]
        set_params(repo, {section: {name: edited(subject, current)}})


def inputs(repo: Path) -> dict[str, dict[str, str]]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {name: {d["path"]: d["md5"] for d in stage["deps"]} for name, stage in lock.items()}


def representatives() -> list[str]:
    """One row per downstream set, a params key where one has it. A stale stage always
    reruns (the status rows above check each row's stale set); what only a real `dvc repro`
    shows is the downstream column, which depends on the bytes the stale stages write, and
    each repro costs seconds. download.mirrors leaves its output's bytes as they were, so
    prepare is skipped; prepare.seed changes them, so train reruns."""
    first: dict[frozenset, str] = {}
    for subject, (_, later) in sorted(table().items(), key=lambda row: ("/" in row[0], row)):
        first.setdefault(frozenset(later), subject)
    return sorted(first.values())


@pytest.fixture
def reverted(repo: Path) -> Iterator[Path]:
    """The e2e repo, its git-tracked files put back afterwards: enough after an edit that
    only `dvc status` looked at (no output was touched)."""
    yield repo
    sh(repo, "git", "checkout", "--", ".")
    assert sh(repo, "git", "status", "--porcelain").stdout == ""


@pytest.mark.parametrize("subject", sorted(table()))
def test_an_edit_makes_exactly_the_table_s_stages_stale(reverted, subject: str) -> None:
    assert stale(reverted) == set()
    edit(reverted, subject)
    assert stale(reverted) == table()[subject][0]


@pytest.mark.parametrize("subject", representatives())
def test_an_edit_reruns_exactly_what_the_table_says(restore, subject: str) -> None:
    repo = restore
    now, later = table()[subject]
    edit(repo, subject)
    before = inputs(repo)
    result = ran(sh(repo, "dvc", "repro").stdout)
    after = inputs(repo)
    changed = {stage for stage in later if before[stage] != after[stage]}
    assert set(result) == now | changed
    assert stale(repo) == set()
