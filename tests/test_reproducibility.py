"""Same params, same machine: byte-identical outputs, in a fresh clone and on any thread count."""

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


def test_a_fresh_clone_reproduces_every_output_bit_for_bit(repo: Path) -> None:
    """A clone with no DVC cache rebuilds everything up to the model, which comes out with
    the committed hash, so evaluate's and explain's git-tracked reports are already current;
    rerun by force, they come out byte for byte as committed too."""
    clone = repo.parent / "clone"
    sh(repo.parent, "git", "clone", "-q", str(repo), str(clone))
    result = sh(clone, "dvc", "repro")
    assert ran(result.stdout) == ["download", "prepare", "train"]
    forced = sh(clone, "dvc", "repro", "--force", "--single-item", "evaluate", "explain")
    assert ran(forced.stdout) == ["evaluate", "explain"]
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
from tests.helpers import tiny_train, train_into, train_paths
root = Path(sys.argv[2])
params = tiny_train(
    units=16, epochs=2, batch_size=32, dropout=0.2, lr_schedule="cosine", clipnorm=1.0
)
train_into(params, root, str(threads))
model = keras.saving.load_model(train_paths(root, str(threads)).model)
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
