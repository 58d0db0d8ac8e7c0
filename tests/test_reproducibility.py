"""Same params, same machine: byte-identical outputs, on `dvc repro -f` and on a fresh clone."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

from tests.e2e import ran, sh
from tests.helpers import ROOT


def weights(path: Path) -> list[np.ndarray]:
    return keras.saving.load_model(path, safe_mode=True).get_weights()


def assert_same_run(repo: Path, other: Path, reference_model: Path) -> None:
    assert (other / "dvc.lock").read_text() == (repo / "dvc.lock").read_text()
    reports = ("metrics.json", "data.json", "classes.csv", "predictions.csv", "errors.png")
    for report in (*reports, "rows.csv", "reading.png"):
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
    assert ran(result.stdout) == ["download", "prepare", "train", "evaluate", "explain"]
    assert sh(repo, "git", "status", "--porcelain").stdout == ""
    assert json.loads((repo / "reports/metrics.json").read_text()) == metrics
    assert_same_run(repo, repo, model)


def test_a_fresh_clone_reproduces_the_committed_run(repo: Path) -> None:
    clone = repo.parent / "clone"
    sh(repo.parent, "git", "clone", "-q", str(repo), str(clone))
    result = sh(clone, "dvc", "repro")
    # The clone has no DVC cache, so everything up to the model is rebuilt; the model comes
    # out with the committed hash, so evaluate's git-tracked reports are already current.
    assert ran(result.stdout) == ["download", "prepare", "train"]
    assert sh(clone, "git", "status", "--porcelain").stdout == ""
    assert_same_run(repo, clone, repo / "models/model.keras")


THREADED_TRAINING = """
import hashlib, sys
from pathlib import Path
import tensorflow as tf
threads = int(sys.argv[1])
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
import keras
from tests.helpers import tiny_train, train_into
root = Path(sys.argv[2])
params = tiny_train(
    units=16, epochs=2, batch_size=32, dropout=0.2, lr_schedule="cosine", clipnorm=1.0
)
train_into(params, root, str(threads))
model = keras.saving.load_model(root / str(threads) / "model.keras")
print(hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest())
"""


def test_thread_count_does_not_change_the_weights(repo: Path, tmp_path: Path) -> None:
    shutil.copytree(repo / "data/prepared", tmp_path / "data/prepared")
    digests = set()
    for threads in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", THREADED_TRAINING, threads, str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
            check=True,
        )
        digests.add(result.stdout.split()[-1])
    assert len(digests) == 1
