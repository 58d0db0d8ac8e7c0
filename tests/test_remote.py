"""A team's DVC remote on a real OpenSSH server (tests/e2e.py's SSHServer): `make remote`,
`make push` with the run-cache, a fresh clone that pulls and reruns nothing, and a teammate
whose params another member already ran, restored instead of trained."""

import hashlib
import subprocess
import sys
from pathlib import Path

from tests.e2e import SSHServer, clone, environment, make, published, ran, set_params, sh, stale
from tests.helpers import ROOT

OUTPUTS = ("models/model.keras", "reports/train.json", "data/prepared/test/x.npy")


def test_make_remote_then_push_and_a_fresh_clone_pulls_and_reruns_nothing(
    repo: Path, ssh_server: SSHServer, tmp_path: Path
) -> None:
    work = published(repo, ssh_server, tmp_path / "a")
    assert any(ssh_server.root.rglob("runs/*/*/*")), "the run-cache entries were not pushed"
    fresh = clone(work, tmp_path / "b")
    pulled = make(fresh, "pull")
    assert pulled.stdout.startswith("pull: ") and ssh_server.url in pulled.stdout
    for output in OUTPUTS:
        assert (fresh / output).read_bytes() == (work / output).read_bytes()
    assert stale(fresh) == set()
    assert ran(sh(fresh, "dvc", "repro").stdout) == []
    assert sh(fresh, "git", "status", "--porcelain").stdout == ""


def test_a_teammate_gets_a_run_another_member_made_without_training(
    repo: Path, ssh_server: SSHServer, tmp_path: Path
) -> None:
    """Member A runs units=16 and goes back to main: the run is only in A's run-cache.
    `dvc push --run-cache` alone sends its entry but not its files (DVC 3.67: a teammate's
    `dvc repro --pull` then warns of missing cache files and trains, docs/scaling.md).
    After `make push`, member B's `dvc repro --pull` with units=16 restores the run."""
    work = published(repo, ssh_server, tmp_path / "a")
    set_params(work, {"train": {"units": 16}})
    assert "train" in ran(sh(work, "dvc", "repro").stdout)
    theirs = {name: (work / name).read_bytes() for name in OUTPUTS}
    md5 = hashlib.md5(theirs[OUTPUTS[0]], usedforsecurity=False).hexdigest()
    model_on_the_remote = ssh_server.root / "files/md5" / md5[:2] / md5[2:]
    sh(work, "git", "checkout", "--", ".")
    sh(work, "dvc", "checkout")

    sh(work, "dvc", "push", "--run-cache")
    assert not model_on_the_remote.exists()
    make(work, "push")
    assert model_on_the_remote.read_bytes() == theirs[OUTPUTS[0]]
    fresh = clone(work, tmp_path / "b")
    make(fresh, "pull")
    set_params(fresh, {"train": {"units": 16}})
    restored = sh(fresh, "dvc", "repro", "--pull")
    assert "Running stage 'train'" not in restored.stdout
    assert "Stage 'train' is cached - skipping run" in restored.stdout
    for name, content in theirs.items():
        assert (fresh / name).read_bytes() == content
    assert stale(fresh) == set()


def test_ci_takes_the_remote_from_its_secrets_or_runs_without_one(
    repo: Path, ssh_server: SSHServer, tmp_path: Path
) -> None:
    """.ci/remote as the workflow runs it, in a checkout with no remote committed and a home
    with no key: the URL, the key and the host's line come from the secrets' variables. The
    remote lands in .dvc/config.local, git sees no change, and no secret is printed; the
    quick run that a member pushed is then restored from the remote, not retrained."""
    work = clone(repo, tmp_path / "a", data=True)
    ssh_server.add_remote(work)
    quick = make(work, "quick", "BASE=main", QUICK, check=False)
    assert "Running stage 'train'" in quick.stderr
    make(work, "push")
    checkout = clone(repo, tmp_path / "ci")
    home = tmp_path / "runner-home"
    env = environment(checkout) | {"HOME": str(home), "PYTHON": sys.executable}
    env |= {"RUNNER_TEMP": str(tmp_path), "DVC_REMOTE_URL": ""}
    script = [str(ROOT / ".ci/remote"), "pull"]
    none = subprocess.run(script, cwd=checkout, env=env, capture_output=True, text=True)
    assert none.returncode == 0 and "CI runs without a team remote" in none.stdout
    assert not (checkout / ".dvc/config.local").exists()

    key = ssh_server.key.read_text()
    known = (ssh_server.home / ".ssh/known_hosts").read_text().strip()
    env |= {"DVC_REMOTE_URL": ssh_server.url, "DVC_SSH_KEY": key, "DVC_SSH_KNOWN_HOSTS": known}
    pulled = subprocess.run(script, cwd=checkout, env=env, capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    assert "::warning::" not in pulled.stdout and "pull: " in pulled.stdout
    assert key.splitlines()[1] not in pulled.stdout + pulled.stderr
    for output in OUTPUTS:
        assert (checkout / output).read_bytes() == (work / output).read_bytes()
    assert sh(checkout, "git", "status", "--porcelain").stdout == ""
    assert (tmp_path / "dvc-remote-key").stat().st_mode & 0o077 == 0
    restored = make(checkout, "quick", "BASE=main", QUICK, check=False)  # CI's next step
    assert "Running stage 'train'" not in restored.stderr
    assert "Stage 'train' is cached - skipping run" in restored.stderr


QUICK = "QUICK_RUN=-S train.seed=5"  # a quick run the e2e repo has not made


def test_push_or_pull_without_a_remote_says_how_to_add_one(repo: Path, tmp_path: Path) -> None:
    work = clone(repo, tmp_path)
    for verb in ("push", "pull"):
        result = sh(work, sys.executable, "-m", "tools.remote", verb, check=False)
        assert result.returncode == 1 and result.stderr == (
            "error: no default DVC remote: add one with `make remote URL=ssh://host/path`\n"
        )
