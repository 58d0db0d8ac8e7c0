"""Synthetic MNIST look-alikes written as real IDX files, so tests need no network or shared/."""

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stages.idx import encode_idx

NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def synthetic_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class k lights up columns 2k+3..2k+4 (plus noise), shuffled.

    Every row (time step) carries the class, so a tiny LSTM learns it in a few epochs.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(count, 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
        images[index, 4:24, 2 * label + 3 : 2 * label + 5] = 255
    return images, labels.astype(np.uint8)


def write_mirror(folder: Path, n_train: int = 400, n_test: int = 200, gz: bool = True) -> dict:
    """Write the four IDX files into folder; return their pins as stages/mnist.json holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    pins = {}
    for split, count, seed in (("train", n_train, 1), ("test", n_test, 2)):
        images, labels = synthetic_digits(count, seed)
        for name, array in zip(NAMES[split], (images, labels), strict=True):
            payload = encode_idx(array)
            pins[name] = {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(payload, mtime=0))
            else:
                (folder / name).write_bytes(payload)
    return pins


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, dict]:
    """A gzip mirror directory of tiny synthetic MNIST and its pins."""
    folder = tmp_path / "mirror"
    return folder, write_mirror(folder)


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    """Uncompressed tiny MNIST as the download stage leaves it in data/raw."""
    folder = tmp_path / "raw"
    write_mirror(folder, gz=False)
    return folder


def write_pins(path: Path, pins: dict) -> None:
    path.write_text(json.dumps(pins, indent=2) + "\n")


@pytest.fixture(scope="session")
def repo(tmp_path_factory) -> Path:
    """A git+DVC copy of this repo, reproduced once on tiny data and committed."""
    from tests.e2e import make_repo

    return make_repo(tmp_path_factory.mktemp("e2e"))


@pytest.fixture
def restore(repo: Path) -> Iterator[Path]:
    """The e2e repo, put back to its committed run afterwards (git, then DVC's cache)."""
    from tests.e2e import sh, stale

    yield repo
    sh(repo, "git", "checkout", "--", ".")
    sh(repo, "dvc", "checkout", "--force")
    assert stale(repo) == set()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark slow every test on the e2e repo (fixture `repo`, or one built on it) or on the
    trained tiny pipeline (`prepared`), so `make check` leaves them out with no list to
    keep up to date. Tests that train in subprocesses carry the mark themselves."""
    for item in items:
        if {"repo", "prepared"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
