"""Same params, same machine: byte-identical outputs, on `dvc repro -f` and on a fresh clone."""

import json
import shutil
from pathlib import Path

import keras
import numpy as np

from tests.e2e import ran, sh


def weights(path: Path) -> list[np.ndarray]:
    return keras.saving.load_model(path, safe_mode=True).get_weights()


def assert_same_run(repo: Path, other: Path, reference_model: Path) -> None:
    assert (other / "dvc.lock").read_text() == (repo / "dvc.lock").read_text()
    for report in ("metrics.json", "data.json", "classes.csv", "predictions.csv"):
        assert (other / "reports" / report).read_bytes() == (repo / "reports" / report).read_bytes()
    ours, theirs = weights(reference_model), weights(other / "models/model.keras")
    assert len(ours) == len(theirs) > 0
    for mine, yours in zip(ours, theirs, strict=True):
        assert np.array_equal(mine, yours)


def test_forced_rerun_reproduces_every_output_bit_for_bit(restore: Path, tmp_path: Path) -> None:
    repo = restore
    model = tmp_path / "before.keras"
    shutil.copy2(repo / "models/model.keras", model)
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    result = sh(repo, "dvc", "repro", "--force")
    assert ran(result.stdout) == ["download", "prepare", "train", "evaluate"]
    assert sh(repo, "git", "status", "--porcelain").stdout == ""
    assert json.loads((repo / "reports/metrics.json").read_text()) == metrics
    assert_same_run(repo, repo, model)


def test_a_fresh_clone_reproduces_the_committed_run(repo: Path) -> None:
    clone = repo.parent / "clone"
    sh(repo.parent, "git", "clone", "-q", str(repo), str(clone))
    result = sh(clone, "dvc", "repro")
    assert ran(result.stdout) == ["download", "prepare", "train", "evaluate"]
    assert sh(clone, "git", "status", "--porcelain").stdout == ""
    assert_same_run(repo, clone, repo / "models/model.keras")
