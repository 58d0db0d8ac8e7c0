"""A stage started by an interpreter that lacks our dependencies, as `.venv/bin/dvc repro`
does without the environment activated (dvc.yaml's `python` is whatever PATH finds):
one line saying what to do, exit 1, nothing touched, no traceback."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from stages import REQUIRED
from tests.e2e import BIN, clone, environment, sh, stale
from tests.helpers import ROOT

STAGES = ["download", "prepare", "train", "evaluate", "explain"]
EVALUATE_GIT_OUTPUTS = ["classes.csv", "errors.png", "metrics.json", "predictions.csv"]


def third_party_imports() -> set[str]:
    """Top-level modules that code under stages/ imports, less the standard library."""
    names = set()
    for path in ROOT.glob("stages/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"stages"}


def test_the_checked_modules_are_exactly_those_the_stages_import() -> None:
    assert set(REQUIRED) == third_party_imports()


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Path:
    """A virtual environment with nothing installed: the system Python as a user has it."""
    where = tmp_path_factory.mktemp("bare")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    return where / "bin"


def expected_error(python: Path) -> str:
    missing = ", ".join(REQUIRED)
    return (
        f"error: {python} lacks this project's dependencies (no {missing}): "
        "activate its environment (`. .venv/bin/activate`) or run `make repro`\n"
    )


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_under_a_bare_interpreter_says_what_to_do(
    bare: Path, tmp_path: Path, stage: str
) -> None:
    (tmp_path / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    (tmp_path / "models").mkdir()
    (tmp_path / "models/model.keras").write_text("earlier output")
    result = subprocess.run(
        [str(bare / "python"), "-m", f"stages.{stage}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == expected_error(bare / "python")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["model.keras", "models", "params.yaml"]
    assert (tmp_path / "models/model.keras").read_text() == "earlier output"


def test_dvc_repro_without_the_environment_fails_in_one_line_and_loses_nothing(
    repo: Path, bare: Path, tmp_path: Path
) -> None:
    """DVC removes a stage's outputs before its command runs: git (the metrics and plots)
    and `dvc checkout` (the rest) put every one back."""
    copy = clone(repo, tmp_path, data=True)
    env = environment(copy) | {"PATH": f"{bare}:/usr/bin:/bin"}  # `python` is the bare one
    result = subprocess.run(
        [str(BIN / "dvc"), "repro", "--force", "--single-item", "evaluate"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert expected_error(bare / "python") in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    deleted = sh(copy, "git", "status", "--porcelain").stdout.splitlines()
    assert sorted(deleted) == [f" D reports/{name}" for name in EVALUATE_GIT_OUTPUTS]
    sh(copy, "git", "checkout", "--", ".")
    sh(copy, "dvc", "checkout")
    assert stale(copy) == set()
