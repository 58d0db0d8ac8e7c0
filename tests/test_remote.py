"""A DVC remote: push the reproduced pipeline, clone fresh, pull, and nothing is stale."""

from pathlib import Path

from tests.e2e import ran, sh, stale


def test_a_fresh_clone_pulls_the_run_and_reproduces_nothing(repo: Path, tmp_path: Path) -> None:
    remote, clone = tmp_path / "remote", tmp_path / "clone"
    # --local: the remote lives in .dvc/config.local, so the shared e2e repo's git is untouched.
    sh(repo, "dvc", "remote", "add", "--local", "--default", "store", str(remote))
    try:
        pushed = sh(repo, "dvc", "push")
    finally:
        sh(repo, "dvc", "remote", "remove", "--local", "store")
    assert "pushed" in pushed.stdout
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    sh(clone, "dvc", "remote", "add", "--local", "--default", "store", str(remote))
    sh(clone, "dvc", "pull")
    for output in ("models/model.keras", "reports/train.json", "data/prepared/test/x.npy"):
        assert (clone / output).read_bytes() == (repo / output).read_bytes()
    assert stale(clone) == set()
    again = sh(clone, "dvc", "repro")
    assert ran(again.stdout) == []
    assert sh(clone, "git", "status", "--porcelain").stdout == ""
