"""The GitHub Actions workflow: valid against GitHub's schema and zizmor's audit (both
offline), and doing what README promises: install with `make test`, a quick run through
real params, the gate."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

from stages.params import load_params
from tests.helpers import ROOT

WORKFLOW = ROOT / ".github/workflows/ci.yml"
CHECK = Path(sys.executable).parent / "check-jsonschema"
ZIZMOR = Path(sys.executable).parent / "zizmor"


def validate(path: Path) -> subprocess.CompletedProcess:
    args = [str(CHECK), "--builtin-schema", "vendor.github-workflows", str(path)]
    return subprocess.run(args, capture_output=True, text=True)


def test_the_workflow_matches_githubs_schema_and_a_broken_one_does_not(tmp_path: Path) -> None:
    assert validate(WORKFLOW).returncode == 0, validate(WORKFLOW).stdout
    # Edited as text: PyYAML would turn the `on:` key into True on the way back.
    broken = WORKFLOW.read_text().replace("    runs-on: ubuntu-latest\n", "")
    (tmp_path / "ci.yml").write_text(broken)
    result = validate(tmp_path / "ci.yml")
    assert result.returncode == 1 and "'runs-on' is a required property" in result.stdout


def audit(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(ZIZMOR), "--offline", str(path)], capture_output=True, text=True)


def test_the_workflow_passes_zizmors_security_audit_and_an_injection_does_not(
    tmp_path: Path,
) -> None:
    result = audit(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    risky = WORKFLOW.read_text() + '      - run: echo "${{ github.event.pull_request.title }}"\n'
    (tmp_path / "ci.yml").write_text(risky)
    result = audit(tmp_path / "ci.yml")
    assert result.returncode != 0 and "template-injection" in result.stdout


def steps() -> list[dict]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]["pipeline"]["steps"]


def test_the_workflow_installs_tests_and_gates_as_readme_says() -> None:
    checkout = next(s for s in steps() if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    python = next(s for s in steps() if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    commands = [s.get("run", "") for s in steps()]
    assert any(c.splitlines()[-1:] == ["make test"] for c in commands)
    assert 'make report BASE="$BASE" >> "$GITHUB_STEP_SUMMARY"' in commands
    assert 'make quick >> "$GITHUB_STEP_SUMMARY"' in commands
    readme = (ROOT / "README.md").read_text()
    assert all(f"make {target}" in readme for target in ("test", "report", "quick"))


def test_the_quick_run_overrides_real_params_keys(tmp_path: Path) -> None:
    """`dvc exp run -S` rejects an unknown key but not a bad value: check both here, or CI
    finds out after installing everything."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    run = re.search(r"^QUICK_RUN := (.*)$", makefile, re.M).group(1)
    overrides = dict(re.findall(r"-S (\w+\.\w+)=(\S+)", run))
    assert overrides == {
        "prepare.train_limit": "2000",
        "train.epochs": "2",
        "train.batch_size": "32",
        "train.warmup_epochs": "0",
    }
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in overrides.items():
        section, name = key.split(".")
        raw[section][name] = yaml.safe_load(value)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(tmp_path / "params.yaml")
    assert (params.prepare.train_limit, params.train.epochs, params.train.batch_size) == (
        2000,
        2,
        32,
    )
