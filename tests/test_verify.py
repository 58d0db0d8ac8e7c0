"""`make verify` on clones of the tiny e2e repo: an honest run reproduces byte for byte and
everything is left as it was; results that `dvc commit -f` recorded without a rerun (an
edited number, a changed param and code file) fail, with their lines; with a DVC remote on
a real SSH server, a model swapped in fails on its re-evaluation, before any training. (The
comparison on another kind of machine, within the tolerance: tests/test_judge.py.)"""

import contextlib
import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.e2e import SSHServer, clone, commit, make, ran, set_params, sh
from tests.test_gate import BREAK_LABELS, edit_metrics, errors
from tools.reproduction import summary
from tools.verify import reevaluate


def workspace(repo: Path) -> tuple[str, ...]:
    """What verify must leave alone: git's view, dvc.lock, the model, the experiments."""
    outputs = [repo / "dvc.lock", repo / "models/model.keras"]
    return (
        sh(repo, "git", "status", "--porcelain", "--ignored").stdout,
        *(hashlib.sha256(path.read_bytes()).hexdigest() for path in outputs),
        sh(repo, "dvc", "exp", "list", "--all-commits").stdout,
    )


def test_an_honest_run_reproduces_byte_for_byte_and_nothing_changes(
    repo: Path, tmp_path: Path
) -> None:
    copy = clone(repo, tmp_path, data=True)
    # A team remote that does not answer (nothing listens on port 1): verify goes on without.
    sh(copy, "dvc", "remote", "add", "--local", "-d", "team", "ssh://127.0.0.1:1/nowhere")
    before = workspace(copy)
    result = make(copy, "verify", "BASE=main")
    assert workspace(copy) == before
    assert re.search(
        r"The committed model could not be pulled \(.*Connect call failed.*\): not re-evaluated",
        result.stdout,
    ), result.stdout
    assert re.search(r"Reran every stage in \d+ min \d+ s; kept in .dvc/tmp/verify", result.stdout)
    assert result.stdout.rstrip().endswith(
        f"on the committed run's kind of machine ({kind(copy)}): every output the same bytes."
    )
    head = sh(copy, "git", "rev-parse", "HEAD").stdout
    assert (copy / ".dvc/tmp/verify/commit").read_text() == head
    assert "Running stage 'train'" in result.stderr  # retrained, not restored
    reported = make(copy, "report", "BASE=main", "REPRODUCED=.dvc/tmp/verify")
    assert "(reproduced) against" in reported.stdout


def kind(repo: Path) -> str:
    return summary(json.loads((repo / "reports/machine.json").read_text())["machine"])


def test_a_param_and_a_code_change_recorded_with_dvc_commit_f_do_not_reproduce(
    repo: Path, tmp_path: Path
) -> None:
    """train.units changed, and prepare's labels misaligned by one, each recorded with `dvc
    commit -f` instead of a rerun: dvc.lock agrees with the files, so the report passes;
    the rerun names the outputs each change alters (one rerun for both: each costs 25 s)."""
    copy = clone(repo, tmp_path, data=True)
    set_params(copy, {"train": {"units": 8}})
    path = copy / "stages/prepare.py"
    path.write_text(path.read_text().replace(*BREAK_LABELS))
    sh(copy, "dvc", "commit", "-f", "-q")
    commit(copy, "changed, recorded with dvc commit -f, not rerun")
    assert make(copy, "report", "BASE=main").returncode == 0  # the lock check cannot tell
    failed = make(copy, "verify", "BASE=main", check=False)
    assert failed.returncode != 0
    differ = [line for line in errors(failed) if "the rerun gave other bytes" in line]
    same_kind = f", on the committed run's kind of machine ({kind(copy)})"
    assert differ and all(line.endswith(same_kind) for line in differ), differ
    for output in ("data/prepared/train", "models/model.keras"):  # the code's, the param's
        assert any(line.startswith(f"error: {output}: ") for line in differ), output


def test_an_edited_number_fails_before_any_training(repo: Path, tmp_path: Path) -> None:
    copy = clone(repo, tmp_path, data=True)
    edit_metrics(copy)
    sh(copy, "dvc", "commit", "-f", "-q", "evaluate")
    commit(copy, "a better number than the run gave")
    failed = make(copy, "verify", "BASE=main", check=False)
    assert errors(failed)[0].startswith(
        "error: reports/metrics.json: test.accuracy 0.987654 is not 1 - 0/"
    )
    assert "The rerun is skipped" in failed.stdout and "Running stage" not in failed.stderr


def test_with_a_remote_a_swapped_model_fails_on_re_evaluation_before_any_training(
    repo: Path, ssh_server: SSHServer, tmp_path: Path
) -> None:
    """Another model (train.seed 7's) recorded as the committed one with `dvc commit -f`,
    the metrics left as they were, and pushed to the team's SSH remote: the lock agrees
    with the files, but verify pulls the model, re-evaluates it and stops, in seconds."""
    copy = clone(repo, tmp_path, data=True)
    set_params(copy, {"train": {"seed": 7}})
    assert "train" in ran(sh(copy, "dvc", "repro", "train").stdout)
    other = (copy / "models/model.keras").read_bytes()
    sh(copy, "git", "checkout", "--", ".")
    sh(copy, "dvc", "checkout", "--force")
    model = copy / "models/model.keras"
    model.unlink()
    model.write_bytes(other)
    sh(copy, "dvc", "commit", "-f", "-q")  # every stage: evaluate's dependency too
    commit(copy, "another model, recorded with dvc commit -f")
    ssh_server.add_remote(copy)
    make(copy, "push")
    failed = make(copy, "verify", "BASE=main", check=False)
    assert failed.returncode != 0
    assert f"Re-evaluated the committed model, pulled from remote 'team' ({ssh_server.url})" in (
        failed.stdout
    )
    assert "The rerun is skipped" in failed.stdout and "Running stage 'train'" not in failed.stderr
    lines = errors(failed)
    assert "error: reports/metrics.json: re-evaluating the committed model gave other bytes" in (
        lines
    ), lines


def test_with_no_remote_the_model_is_not_re_evaluated_and_verify_says_so(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    copy = clone(repo, tmp_path)
    with contextlib.chdir(copy):
        assert reevaluate(copy) == []
    assert capsys.readouterr().out == (
        "No DVC remote: the committed model is not re-evaluated (make remote).\n\n"
    )
