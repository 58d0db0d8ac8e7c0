"""CI's gates: the judge of a run, and the way to ask the base revision's judge.

    python -m tools.gates --base REF [--reproduced DIR]     the committed run (and its rerun)
    python -m tools.gates --base REF --quick FILE            CI's quick run, against its floor

A change must not write the rules it is judged by: `ask_base()` runs the base revision's
copy of this module, with its params.yaml, never the change's. `judge()` fails with one
line per problem: a stale dvc.lock (tools/lockcheck.py), a metric that cannot be loaded,
results that disagree with each other (`consistency`), a drop below the base or under the
floor at any commit since it (`drop_gate`, `floor_gate`), and a rerun that does not
reproduce (`rerun_of_head`, tools/reproduction.py). What each check catches and why, and
what none can: docs/guarantees.md, "The report, its gates, and CI".
"""

import argparse
import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

from rowlstm.byte_stable import accuracy as share_right
from rowlstm.errors import UserError, cli, one_line
from rowlstm.params import ReportParams, validate
from tools import reproduction
from tools.reproduction import GATED, METRICS, accuracy_of

# This module's own params.yaml: run through ask_base(), the base revision's.
THRESHOLDS = Path(__file__).resolve().parents[1] / "params.yaml"


@dataclasses.dataclass(frozen=True)
class Gates:
    """params.yaml's report section alone: the base's other sections follow the base's
    schema, which may not be this code's."""

    report: ReportParams


@dataclasses.dataclass
class Verdict:
    """What the gate found: the failures (one line each) and what passed (Markdown)."""

    failures: list[str] = dataclasses.field(default_factory=list)
    passed: list[str] = dataclasses.field(default_factory=list)

    def markdown(self, judge: str) -> str:
        if self.failures:
            lines = "".join(f"- {line}\n" for line in self.failures)
            return f"**Gate failed** ({judge}):\n\n{lines}"
        return f"**Gate passed** ({judge}): " + "; ".join(self.passed) + ".\n"


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


def thresholds(ref: str, path: Path = THRESHOLDS) -> ReportParams:
    """The report section of the judge's own params.yaml, every key required: a threshold
    the base lacks fails the gate ("closed") instead of letting the change set it."""
    where = f"params.yaml at {ref}"
    try:
        raw = yaml.safe_load(path.read_text()) if path.exists() else {}
    except yaml.YAMLError as error:
        raise UserError(f"{where}: not valid YAML: {one_line(error)}") from None
    section = raw.get("report") if isinstance(raw, dict) else None
    return validate({"report": section or {}}, Gates, where).report


def committed_accuracy(ref: str) -> float | None:
    """test.accuracy as committed at ref; None if ref has no metrics file."""
    text = committed(ref, METRICS)
    return None if text is None else accuracy_of(text, f"{METRICS} at {ref}")


def pushed_runs(ref: str) -> list[tuple[str, float]]:
    """(label, committed test.accuracy) of each commit after ref and before HEAD that has
    metrics: a push or pull request of several commits is judged at each, not only at its
    last (all parents: a pull request's merge commit has its commits on the second)."""
    head = git("rev-parse", "HEAD").stdout.strip()
    listed = git("rev-list", "--reverse", f"{ref}..HEAD")
    shas = [sha for sha in listed.stdout.split() if sha != head] if listed.returncode == 0 else []
    accuracies = ((sha, committed_accuracy(sha)) for sha in shas)
    return [(f"at {sha[:7]}", value) for sha, value in accuracies if value is not None]


def drop_gate(
    base: float | None, runs: list[tuple[str, float]], params: ReportParams, ref: str
) -> Verdict:
    """Each run within max_accuracy_drop of the base's (rounded to 9 places first, so that
    0.9879 - 0.9859 counts as exactly 0.002) and at or above min_accuracy."""
    verdict = Verdict()
    for label, value in runs:
        if base is not None and round(base - value, 9) > params.max_accuracy_drop:
            verdict.failures.append(
                f"{GATED} ({label}) dropped from {base:g} ({ref}) to {value:g}, "
                f"more than report.max_accuracy_drop={params.max_accuracy_drop:g}"
            )
        if value < params.min_accuracy:
            verdict.failures.append(
                f"{GATED} ({label}) {value:g} is below report.min_accuracy={params.min_accuracy:g}"
            )
    shown = ", ".join(f"{value:g} ({label})" for label, value in runs)
    against = f"against {base:g} on {ref}" if base is not None else f"({ref} has no metrics)"
    verdict.passed.append(
        f"{GATED} {shown} {against}, allowed drop {params.max_accuracy_drop:g}, "
        f"floor {params.min_accuracy:g}"
    )
    return verdict


def floor_gate(value: float, floor: float) -> Verdict:
    """CI's quick run: failed below its floor, report.quick_min_accuracy."""
    if value < floor:
        return Verdict(
            failures=[
                f"{GATED} {value:g} is below report.quick_min_accuracy={floor:g}: "
                "the pipeline has stopped learning"
            ]
        )
    return Verdict(passed=[f"{GATED} {value:g}, floor report.quick_min_accuracy={floor:g}"])


def consistency(folder: Path) -> list[str]:
    """One line per way the committed results disagree with each other: what an edited
    number, recorded with `dvc commit -f`, cannot keep consistent."""
    try:
        test = json.loads((folder / METRICS).read_text())["test"]
        errors, stated = int(test["errors"]), float(test["accuracy"])
        predictions = _csv(folder / "reports/predictions.csv")
        wrong = sum(row["actual"] != row["predicted"] for row in predictions)
        per_digit = sum(int(row["errors"]) for row in _csv(folder / "reports/classes.csv"))
        last_row = float(_csv(folder / "reports/rows.csv")[-1]["accuracy"])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        raise UserError(f"the committed results cannot be read: {one_line(error)}") from None
    problems = []
    if stated != share_right(errors, len(predictions)):
        problems.append(
            f"{METRICS}: {GATED} {stated:g} is not 1 - {errors}/{len(predictions)} "
            "(test.errors over the test digits)"
        )
    for source, count in (("reports/predictions.csv", wrong), ("reports/classes.csv", per_digit)):
        if count != errors:
            problems.append(f"{METRICS}: test.errors {errors}, but {source} counts {count}")
    if last_row != stated:
        problems.append(f"{METRICS}: {GATED} {stated:g}, but reports/rows.csv ends at {last_row:g}")
    return problems


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def input_problems(ref: str) -> list[str]:
    """What makes any comparison untrustworthy, one line each."""
    from tools.lockcheck import stale_stages, unloadable_metrics

    stale = stale_stages()
    if stale:
        return [f"dvc.lock is stale, {line} (run `dvc repro`, commit)" for line in stale]
    broken = unloadable_metrics(ref).get("workspace", [])
    return [
        f"declared metric cannot be loaded: {file} (keep metrics in git: cache: false)"
        for file in broken
    ]


def judge(ref: str, reproduced: Path | None) -> Verdict:
    """The committed run in the working directory (and its rerun) against ref."""
    params = thresholds(ref)
    problems = input_problems(ref)
    if problems:
        return Verdict(failures=problems)
    verdict = Verdict(failures=consistency(Path(".")))
    base = committed_accuracy(ref)
    if base is None:
        print(f"warning: {no_base_metrics(ref)}", file=sys.stderr)
    runs = [*pushed_runs(ref), ("committed", reproduction.gated(Path(".")))]
    if reproduced is not None:
        verdict.failures += rerun_of_head(reproduced)
        runs.append(("reproduced", reproduction.gated(reproduced)))
        failures, passed = reproduction.compare(Path("."), reproduced, params.verify_tolerance)
        verdict.failures += failures
        verdict.passed += passed
    gated = drop_gate(base, runs, params, ref)
    return Verdict(verdict.failures + gated.failures, gated.passed + verdict.passed)


def rerun_of_head(reproduced: Path) -> list[str]:
    """A line if the rerun in reproduced is not of HEAD (make verify writes which it is)."""
    head = git("rev-parse", "HEAD").stdout.strip()
    try:
        of = (reproduced / "commit").read_text().strip()
    except OSError:
        of = "unknown"
    if of == head:
        return []
    return [f"the rerun in {reproduced} is of commit {of[:7]}, not HEAD {head[:7]} (make verify)"]


def no_base_metrics(ref: str) -> str:
    return (
        f"{ref} has no committed {METRICS}, so there is no accuracy to compare with; "
        "the drop gate is skipped and the floor still applies"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="the revision this judge comes from")
    parser.add_argument("--reproduced", type=Path, help="make verify's rerun of HEAD")
    parser.add_argument("--quick", type=Path, help="a quick run's metrics file")
    args = parser.parse_args()
    if args.quick:
        params = thresholds(args.base)
        value = accuracy_of(args.quick.read_text(), str(args.quick))
        verdict = floor_gate(value, params.quick_min_accuracy)
    else:
        verdict = judge(args.base, args.reproduced)
    print(verdict.markdown(f"the gate of {args.base}"), end="")
    if verdict.failures:
        raise UserError("\n".join(verdict.failures))


@dataclasses.dataclass(frozen=True)
class Asked:
    """The base's judge's answer: its Markdown, and its failures (none: passed)."""

    markdown: str
    failures: list[str]


def ask_base(ref: str, *args: str, where: Path = Path(".")) -> Asked:
    """Run ref's own judge (`python -m tools.gates --base ref ARGS`) in the repository at
    where, with ref's code and ref's thresholds; its warnings go to stderr.

    ref's tree is extracted (`git archive`) and put first on the path of a `python -P`, so
    the change's modules cannot stand in for ref's. Where ref has no judge, or its judge
    cannot read the change, the answer is a failure naming why: never a pass by default.
    """
    with tempfile.TemporaryDirectory(prefix="gate-") as folder:
        extract(ref, Path(folder), where)
        if not (Path(folder) / "tools/gates.py").exists():
            failure = (
                f"{ref} has no gate (tools/gates.py) to judge this change with: a change that "
                "brings the gate is for review, it cannot pass its own"
            )
            return Asked(Verdict(failures=[failure]).markdown(f"no gate at {ref}"), [failure])
        command = [sys.executable, "-P", "-m", "tools.gates", "--base", ref, *args]
        env = os.environ | {"PYTHONPATH": folder}
        result = subprocess.run(command, cwd=where, env=env, capture_output=True, text=True)
    lines = result.stderr.splitlines()
    failures = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    sys.stderr.writelines(f"{line}\n" for line in lines if line.startswith("warning: "))
    if result.returncode and not failures:
        reason = (lines or ["no output"])[-1]
        failures = [f"the gate of {ref} cannot judge this change: {reason}"]
    return Asked(result.stdout, failures if result.returncode else [])


def extract(ref: str, folder: Path, where: Path) -> None:
    """ref's committed tree into folder (`git archive`: nothing of the workspace)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=where, capture_output=True
    )
    if archive.returncode:
        raise UserError(f"git archive {ref} failed: {one_line(archive.stderr.decode())}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tree:
        tree.extractall(folder, filter="data")


if __name__ == "__main__":
    cli(main)
