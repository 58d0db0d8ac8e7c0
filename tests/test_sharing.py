"""Sharing experiments and the model, with a bare git repo standing in for GitHub and a DVC
remote on a real OpenSSH server (tests/e2e.py's SSHServer): `dvc exp push`/`dvc exp pull`
between two clones, and `dvc artifacts get` of a tagged model version
(`mnist-row-lstm@vX.Y.Z`, GTO's tag format) from outside any clone.

Everything runs in a clone of the shared e2e repo, so that repo's git and config stay as found.
"""

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e import SSHServer, experiments, sh, stale

ARTIFACT = "mnist-row-lstm"
MODEL = "models/model.keras"
EXPERIMENT = "units-16"


@dataclass(frozen=True)
class Shared:
    """The 'GitHub' stand-in, the SSH remote, and the clone that pushed to them."""

    origin: Path  # bare git repo, the `origin` remote
    storage: str  # the SSH remote's URL, committed in .dvc/config as the default
    work: Path  # the clone that committed the remote, tagged v1.0.0 and ran the experiment
    unconfigured: str  # the e2e repo's commit: the same model, but no DVC remote in .dvc/config
    baseline_model: bytes  # the model at main (tag v1.0.0)
    experiment_model: bytes  # the model of experiment EXPERIMENT (train.units=16)
    experiment_metrics: dict  # its reports/metrics.json


def tag(repo: Path, version: str, rev: str = "HEAD") -> str:
    """An annotated GTO version tag, pushed to origin; `dvc artifacts get` skips lightweight
    tags (gto/tag.py, find())."""
    name = f"{ARTIFACT}@{version}"
    sh(repo, "git", "tag", "-a", name, "-m", f"{ARTIFACT} {version}", rev)
    sh(repo, "git", "push", "-q", "origin", name)
    return name


def get(where: Path, origin: Path, out: str, *options: str, check: bool = True):
    """`dvc artifacts get` of the model from origin, run outside any repo."""
    args = ("dvc", "artifacts", "get", str(origin), ARTIFACT, "-o", out, *options)
    return sh(where, *args, check=check)


@pytest.fixture(scope="module")
def shared(
    repo: Path, ssh_server: SSHServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shared]:
    """Publish the e2e repo to origin with its data in storage, tag it v1.0.0, then run one
    experiment and `dvc exp push` it (git refs to origin, its outputs to storage)."""
    before = [sh(repo, "git", *args).stdout for args in (("rev-parse", "HEAD"), ("status",))]
    unconfigured = before[0].strip()
    base = tmp_path_factory.mktemp("sharing")
    origin, storage, work = base / "origin.git", ssh_server.url, base / "work"
    sh(base, "git", "clone", "-q", "--bare", str(repo), str(origin))
    sh(base, "git", "clone", "-q", str(origin), str(work))
    # The e2e repo's cache: the data the clone would otherwise `dvc pull`, and the run-cache,
    # which restores the experiment's stages when another test has run the same params.
    shutil.copytree(repo / ".dvc/cache", work / ".dvc/cache")
    sh(work, "dvc", "checkout")
    # Committed, not --local: `dvc artifacts get` and fresh clones read the remote from git.
    sh(work, "dvc", "remote", "add", "--default", "storage", storage)
    sh(work, "git", "commit", "-qm", "DVC remote", ".dvc/config")
    sh(work, "git", "push", "-q", "origin", "main")
    sh(work, "dvc", "push")
    tag(work, "v1.0.0")
    baseline_model = (work / MODEL).read_bytes()

    sh(work, "dvc", "exp", "run", "-n", EXPERIMENT, "-S", "train.units=16")
    pushed = sh(work, "dvc", "exp", "push", "origin", EXPERIMENT)
    assert f"Pushed experiment {EXPERIMENT} to Git remote 'origin'" in pushed.stdout
    experiment_model = (work / MODEL).read_bytes()
    assert experiment_model != baseline_model
    metrics = json.loads((work / "reports/metrics.json").read_text())
    yield Shared(origin, storage, work, unconfigured, baseline_model, experiment_model, metrics)
    after = [sh(repo, "git", *args).stdout for args in (("rev-parse", "HEAD"), ("status",))]
    assert after == before, "the shared e2e repo changed"


def test_a_teammate_pulls_the_experiment_and_gets_its_model(shared: Shared, tmp_path: Path) -> None:
    """`git clone` brings no experiments; `dvc exp pull` brings its refs and its outputs."""
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(shared.origin), str(clone))
    assert experiments(clone) == {}
    pulled = sh(clone, "dvc", "exp", "pull", "origin", EXPERIMENT)
    assert "Pulled experiment" in pulled.stdout and EXPERIMENT in pulled.stdout
    found = experiments(clone)
    assert list(found) == [EXPERIMENT]
    assert found[EXPERIMENT]["params"]["params.yaml"]["data"]["train"]["units"] == 16
    metrics = found[EXPERIMENT]["metrics"]["reports/metrics.json"]["data"]
    assert metrics == shared.experiment_metrics
    md5 = found[EXPERIMENT]["outs"][MODEL]["hash"]
    assert (clone / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).exists()  # fetched by the pull
    assert not (clone / MODEL).exists()

    sh(clone, "dvc", "exp", "apply", EXPERIMENT)
    assert (clone / MODEL).read_bytes() == shared.experiment_model
    assert "units: 16" in (clone / "params.yaml").read_text()
    assert stale(clone) == set()


def test_artifacts_get_downloads_each_tagged_model_version(shared: Shared, tmp_path: Path) -> None:
    """Promote the experiment to main as v1.1.0; each version (and the latest) downloads from
    origin and storage alone, byte for byte."""
    work = shared.work
    sh(work, "dvc", "exp", "apply", EXPERIMENT)
    sh(work, "git", "add", "-A")
    sh(work, "git", "commit", "-qm", f"Promote experiment {EXPERIMENT}")
    assert "Everything is up to date" in sh(work, "dvc", "push").stdout  # exp push sent it
    tag(work, "v1.1.0")

    get(tmp_path, shared.origin, "v1.0.0.keras", "--rev", "v1.0.0")
    get(tmp_path, shared.origin, "v1.1.0.keras", "--rev", "v1.1.0")
    get(tmp_path, shared.origin, "latest.keras")
    assert (tmp_path / "v1.0.0.keras").read_bytes() == shared.baseline_model
    assert (tmp_path / "v1.1.0.keras").read_bytes() == shared.experiment_model
    assert (tmp_path / "latest.keras").read_bytes() == shared.experiment_model


def test_artifacts_get_needs_an_annotated_tag_and_a_remote_committed_or_named(
    shared: Shared, tmp_path: Path
) -> None:
    """Two ways a version goes missing: a lightweight tag, and a commit older than the one that
    added the DVC remote (its .dvc/config, read at the tagged commit, names none), unless
    the command names the remote itself."""
    sh(shared.work, "git", "tag", f"{ARTIFACT}@v0.0.1", "HEAD")  # lightweight
    sh(shared.work, "git", "push", "-q", "origin", f"{ARTIFACT}@v0.0.1")
    light = get(tmp_path, shared.origin, "light.keras", "--rev", "v0.0.1", check=False)
    assert light.returncode == 1
    assert f"Unable to find artifact '{ARTIFACT} @ v0.0.1'" in light.stderr

    tag(shared.work, "v0.9.0", shared.unconfigured)
    old = get(tmp_path, shared.origin, "old.keras", "--rev", "v0.9.0", check=False)
    assert old.returncode == 1
    assert f"No storage files available: '{MODEL}'" in old.stderr
    # ...which is still fetched by naming a remote: --config merges one in.
    config = tmp_path / "storage.config"
    config.write_text(
        f"[core]\n    remote = storage\n['remote \"storage\"']\n    url = {shared.storage}\n"
    )
    get(tmp_path, shared.origin, "old.keras", "--rev", "v0.9.0", "--config", str(config))
    assert (tmp_path / "old.keras").read_bytes() == shared.baseline_model
