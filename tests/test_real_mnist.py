"""The pinned checksums and the IDX reader against the real MNIST, where a copy is at hand."""

from pathlib import Path

import numpy as np
import pytest

from rowlstm.download_mirrors import load_pins
from rowlstm.params import DownloadParams
from rowlstm.paths import DownloadPaths
from rowlstm.prepare_split import read_raw
from stages.download import run
from tests.helpers import HAS_REAL_MNIST, NO_REAL_MNIST, REAL_MNIST

pytestmark = pytest.mark.skipif(not HAS_REAL_MNIST, reason=NO_REAL_MNIST)


def test_real_mnist_downloads_verified_and_parses(tmp_path: Path) -> None:
    params = DownloadParams(mirrors=("file:///nonexistent/",), timeout=30.0)
    run(params, DownloadPaths(tmp_path / "raw"), load_pins(), REAL_MNIST)
    images, labels = read_raw(tmp_path / "raw", "train")
    assert images.shape == (60000, 28, 28)
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(labels).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949
    ]  # fmt: skip
    test_images, test_labels = read_raw(tmp_path / "raw", "t10k")
    assert test_images.shape == (10000, 28, 28)
    assert np.bincount(test_labels).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009
    ]  # fmt: skip
