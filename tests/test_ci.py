"""The GitHub Actions workflow: valid against GitHub's schema and zizmor's audit (both
offline), and doing what README promises: install with `make test`, a quick run through
real params, the gate."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from rowlstm.params import load_params
from tests.helpers import ROOT
from tools.report import GATE_FILES

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


def steps(job: str = "pipeline") -> list[dict]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]


def uses(action: str, job: str = "pipeline") -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").startswith(f"actions/{action}@")]


def test_the_workflow_installs_tests_verifies_and_gates_as_readme_says() -> None:
    """One entry point: the workflow runs .ci/run, which runs README's `make test`, then
    `make verify`; the report then gates the rerun too, against the base chosen first."""
    checkout = next(s for s in steps() if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    python = next(s for s in steps() if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    commands = [s.get("run", "") for s in steps()]
    assert any(c.splitlines()[-1:] == [".ci/run"] for c in commands)
    script = (ROOT / ".ci/run").read_text().splitlines()
    assert script[-2:] == ["make test", "make verify"]
    reported = 'make report BASE="$BASE" REPRODUCED=.dvc/tmp/verify >> "$GITHUB_STEP_SUMMARY"'
    assert commands.index(reported) > next(i for i, c in enumerate(commands) if ".ci/run" in c)
    assert 'make quick BASE="$BASE" >> "$GITHUB_STEP_SUMMARY"' in commands
    assert 'make plots-diff BASE="$BASE" >> "$GITHUB_STEP_SUMMARY"' in commands
    readme = (ROOT / "README.md").read_text()
    assert all(f"make {target}" in readme for target in ("test", "report", "quick", "verify"))


def test_a_push_is_compared_with_the_commit_before_it() -> None:
    """Not HEAD~1: a push of several commits has each judged against the last one CI saw."""
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["pipeline"]
    assert job["env"]["BEFORE"] == "${{ github.event.before }}"
    base = next(s for s in steps() if "GITHUB_ENV" in s.get("run", ""))["run"]
    assert 'base="$BEFORE"' in base and 'base="origin/$TARGET"' in base


def test_superseded_runs_of_a_pull_request_are_cancelled() -> None:
    concurrency = yaml.safe_load(WORKFLOW.read_text())["concurrency"]
    assert "github.event.pull_request.number" in concurrency["group"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_codeowners_routes_exactly_the_gates_files_to_review() -> None:
    owned = [
        line.split()[0].lstrip("/")
        for line in (ROOT / ".github/CODEOWNERS").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert owned == list(GATE_FILES)


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
        "train.ema_momentum": "0.9",
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


def test_the_workflow_caches_the_environment_and_dvcs_cache() -> None:
    venv, dvc = uses("cache")
    assert venv["with"]["path"] == ".venv"
    key = venv["with"]["key"]
    assert "hashFiles('requirements.lock')" in key and "steps.python.outputs.python-version" in key
    touch = next(s for s in steps() if s.get("run") == "touch .venv/bin/dvc")
    assert touch["if"] == f"steps.{venv['id']}.outputs.cache-hit == 'true'"
    assert dvc["with"]["path"] == ".dvc/cache"  # the run-cache (.dvc/cache/runs) with it
    # Keyed on what it holds, not on the commit: one entry per dvc.lock, not one per run.
    assert dvc["with"]["key"] == "dvc-${{ runner.os }}-${{ hashFiles('dvc.lock') }}"
    assert dvc["with"]["key"].startswith(dvc["with"]["restore-keys"])
    (newest,) = uses("cache", "newest-dvc")
    assert (
        newest["with"]["path"] == ".venv"
        and "hashFiles('requirements.lock')" in newest["with"]["key"]
    )


def test_a_restored_environment_marked_current_is_not_rebuilt(tmp_path: Path) -> None:
    """A restored cache keeps the files' old times, and the checkout makes the lock new:
    without the workflow's `touch`, make would rebuild .venv from scratch."""
    (tmp_path / "Makefile").write_text((ROOT / "Makefile").read_text())
    dvc = tmp_path / ".venv/bin/dvc"
    dvc.parent.mkdir(parents=True)
    dvc.touch()
    os.utime(dvc, (0, 0))  # as restored: older than the checkout
    (tmp_path / "requirements.lock").touch()

    def rebuilds() -> bool:
        dry = subprocess.run(["make", "-n", ".venv/bin/dvc"], cwd=tmp_path, capture_output=True)
        return b"-m venv" in dry.stdout

    assert rebuilds()
    subprocess.run(["touch", ".venv/bin/dvc"], cwd=tmp_path, check=True)
    assert not rebuilds()


def test_the_pictures_go_up_as_an_artifact_linked_from_the_summary() -> None:
    makefile = (ROOT / "Makefile").read_text()
    folder = re.search(r"tools.figures --diff \$\(BASE\) --out (\S+)", makefile)[1]
    (upload,) = uses("upload-artifact")
    assert upload["with"]["path"] == folder
    link = next(s for s in steps() if "artifact-url" in str(s.get("env")))
    assert link["env"]["URL"] == f"${{{{ steps.{upload['id']}.outputs.artifact-url }}}}"
    assert '>> "$GITHUB_STEP_SUMMARY"' in link["run"]


def test_the_gate_tests_also_run_on_the_newest_dvc_allowed_to_fail() -> None:
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["newest-dvc"]
    assert job["continue-on-error"] is True
    commands = "\n".join(s.get("run", "") for s in job["steps"])
    assert 'pip install --quiet --upgrade "dvc>=3,<4"' in commands
    assert "make gate-tests" in commands
    gate_tests = re.search(r"^gate-tests:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), re.M)[1]
    assert "tests/test_gate.py" in gate_tests and "tests/test_judge.py" in gate_tests


def test_the_team_remote_comes_from_secrets_pulls_first_and_pushes_from_main() -> None:
    """.ci/remote (tested against a real SSH server in tests/test_remote.py) pulls before
    .ci/run, so that verify finds the remote, and pushes the run-cache from main alone; the
    secrets reach those two steps and no other."""
    commands = [s.get("run", "") for s in steps()]
    pull = next(i for i, c in enumerate(commands) if ".ci/remote pull" in c)
    push = next(i for i, c in enumerate(commands) if ".ci/remote push" in c)
    assert pull < next(i for i, c in enumerate(commands) if ".ci/run" in c) < push
    secrets = {f"DVC_{name}": f"${{{{ secrets.DVC_{name} }}}}" for name in NAMES}
    assert [i for i, s in enumerate(steps()) if "secrets." in str(s)] == [pull, push]
    assert steps()[pull]["env"] == steps()[push]["env"] == secrets
    on_main = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert on_main in steps()[push]["if"]
    assert "secrets" not in str(yaml.safe_load(WORKFLOW.read_text())["jobs"]["pipeline"]["env"])


NAMES = ("REMOTE_URL", "SSH_KEY", "SSH_KNOWN_HOSTS")
