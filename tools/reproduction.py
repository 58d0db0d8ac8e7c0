"""What the gate (tools/gates.py) compares: the gated metric, and whether a rerun
reproduces the committed run.

The committed run says which kind of machine made it (reports/machine.json, written by the
train stage: rowlstm/machine.py). A rerun on the same kind must give every output the same
bytes, which dvc.lock's hashes show for DVC-cached and git-tracked outputs alike. Another
kind gives other bytes by design (oneDNN, Eigen and the number of cores pick the order of
the float sums), so there only the gated metric is compared, within a tolerance measured
across CPUs and seeds (report.verify_tolerance).
"""

import json
from pathlib import Path
from typing import Any

import yaml

from rowlstm.errors import UserError

LOCK = Path("dvc.lock")
MACHINE = Path("reports/machine.json")
METRICS = Path("reports/metrics.json")
GATED = "test.accuracy"  # the metric the gates judge


def compare(committed: Path, rerun: Path, tolerance: float) -> tuple[list[str], list[str]]:
    """(failures, what passed) of the rerun in folder rerun against the run in committed."""
    made_by, here = machine(committed, "the committed run"), machine(rerun, "the rerun")
    if made_by == here:
        differ = other_bytes(outputs(committed), outputs(rerun))
        kind = f"the committed run's kind of machine ({summary(here)})"
        if differ:
            return [f"{line}, on {kind}" for line in differ], []
        return [], [f"reproduced on {kind}: every output the same bytes"]
    old, new = gated(committed), gated(rerun)
    within = f"report.verify_tolerance={tolerance:g}"
    kinds = f"rerun on {summary(here)}; the committed run on {summary(made_by)}"
    if round(abs(new - old), 9) > tolerance:
        return [
            f"{GATED} reproduced {new:g} against {old:g} committed: further apart than "
            f"{within} ({kinds})"
        ], []
    return [], [
        f"{GATED} reproduced {new:g} against {old:g} committed, within {within} "
        f"({kinds}: bytes are not compared)"
    ]


def machine(folder: Path, which: str) -> dict[str, Any]:
    try:
        return json.loads((folder / MACHINE).read_text())["machine"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{MACHINE}: {which} does not say which machine made it") from None


def summary(record: dict[str, Any]) -> str:
    """ "AMD EPYC, 2 cores, avx512_core_bf16, TensorFlow 2.21.0": the record in a few words."""
    return (
        f"{record.get('cpu')}, {record.get('cores')} cores, {record.get('isa')}, "
        f"TensorFlow {record.get('tensorflow')}"
    )


def outputs(folder: Path) -> dict[str, str]:
    """{output path: its hash} of every stage, as folder's dvc.lock records them."""
    try:
        lock = yaml.safe_load((folder / LOCK).read_text())
        return {
            out["path"]: out.get("md5") or str(out.get("hash"))
            for stage in lock["stages"].values()
            for out in stage.get("outs", [])
        }
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        raise UserError(f"{folder / LOCK}: cannot read its outputs") from None


def other_bytes(committed: dict[str, str], rerun: dict[str, str]) -> list[str]:
    """One line per output whose bytes the rerun did not reproduce."""
    return [
        f"{path}: the rerun gave other bytes (md5 {rerun.get(path, 'none')[:8]}, "
        f"committed {digest[:8]})"
        for path, digest in sorted(committed.items())
        if rerun.get(path) != digest
    ]


def gated(folder: Path) -> float:
    """test.accuracy of the run in folder."""
    path = folder / METRICS
    try:
        text = path.read_text()
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    return accuracy_of(text, str(path))


def accuracy_of(text: str, where: str) -> float:
    """test.accuracy from a metrics file's text; where names the file in errors."""
    try:
        return float(json.loads(text)["test"]["accuracy"])
    except json.JSONDecodeError as error:
        raise UserError(f"{where}: not valid JSON ({error})") from None
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{where}: no number at test.accuracy") from None
