"""A stage started by an interpreter that lacks our dependencies, as `.venv/bin/dvc repro`
does without the environment activated (dvc.yaml's `python` is whatever PATH finds):
one line saying what to do, exit 1, nothing touched, no traceback."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import stages as stages_guard
import tools as tools_guard
from tests.e2e import BIN, clone, environment, sh, stale
from tests.helpers import PACKAGES, ROOT, imported_files, third_party_imports

STAGES = ["download", "prepare", "train", "evaluate", "explain"]
EVALUATE_GIT_OUTPUTS = ["classes.csv", "errors.png", "metrics.json", "predictions.csv"]


def imports_of(package: str, root: Path = ROOT) -> tuple[set[str], set[str]]:
    """(our files, third-party modules) that the package's modules import, transitively."""
    names = [path.stem for path in (root / package).glob("*.py") if path.stem != "__init__"]
    files = set().union(*(imported_files(f"{package}.{name}", root) for name in names))
    return files, third_party_imports(files, root)


def test_each_guard_checks_exactly_what_its_package_imports() -> None:
    """The stages' list holds only what the stages and the library modules they use
    import: a tool's dependency would make every stage stale (they all depend on it)."""
    assert set(stages_guard.REQUIRED) == imports_of("stages")[1]
    assert set(tools_guard.REQUIRED) == imports_of("tools")[1]


def test_a_tools_new_import_changes_nothing_a_stage_depends_on(tmp_path: Path) -> None:
    """As the page's server would: a tool that imports a new third-party module and a new
    library module. No stage's files or dependencies change; the tools' list grows."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package)
    (tmp_path / "rowlstm/serving.py").write_text("import http.server\nimport jinja2\n")
    with (tmp_path / "tools/predict.py").open("a") as tool:
        tool.write("\nimport flask\nfrom rowlstm import serving\n")
    assert imports_of("stages", tmp_path) == imports_of("stages")
    files, modules = imports_of("tools", tmp_path)
    assert "rowlstm/serving.py" in files and {"flask", "jinja2"} <= modules


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Path:
    """A virtual environment with nothing installed: the system Python as a user has it."""
    where = tmp_path_factory.mktemp("bare")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    return where / "bin"


def expected_error(python: Path) -> str:
    missing = ", ".join(stages_guard.REQUIRED)
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
