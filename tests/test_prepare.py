import json
from pathlib import Path

import numpy as np
import pytest

from rowlstm.errors import UserError
from rowlstm.params import PrepareParams
from rowlstm.paths import PreparePaths
from rowlstm.prepare_split import stratified_take, train_val_indices
from rowlstm.split_files import load_split, to_sequences
from stages.prepare import run
from tests.helpers import encode_idx


def prepare(raw_dir: Path, out: Path, **overrides: int) -> dict:
    values = {"val_size": 50, "train_limit": 0, "seed": 7} | overrides
    paths = PreparePaths(raw_dir, prepared=out / "prepared", report=out / "data.json")
    return run(PrepareParams(**values), paths)


def test_splits_have_expected_sizes_dtype_shape_and_range(raw_dir, tmp_path) -> None:
    summary = prepare(raw_dir, tmp_path)
    assert {k: v["size"] for k, v in summary.items()} == {"train": 350, "val": 50, "test": 200}
    for name, size in (("train", 350), ("val", 50), ("test", 200)):
        x, y = load_split(tmp_path / "prepared" / name)
        assert x.dtype == np.float32 and x.shape == (size, 28, 28)
        assert y.dtype == np.uint8 and y.shape == (size,)
        assert x.min() >= 0.0 and x.max() == 1.0
    assert json.loads((tmp_path / "data.json").read_text()) == summary


def test_validation_split_is_stratified_and_disjoint(raw_dir, tmp_path) -> None:
    prepare(raw_dir, tmp_path, val_size=100)
    train_x, train_y = load_split(tmp_path / "prepared" / "train")
    val_x, val_y = load_split(tmp_path / "prepared" / "val")
    assert np.bincount(val_y, minlength=10).tolist() == [10] * 10
    assert np.bincount(train_y, minlength=10).tolist() == [30] * 10
    together = np.concatenate([train_x, val_x]).reshape(400, -1)
    assert len(np.unique(together, axis=0)) == 400


def test_uneven_classes_keep_their_proportions_and_exact_size() -> None:
    labels = np.repeat(np.arange(10), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    taken = stratified_take(labels, 5000, np.random.default_rng(0))
    assert len(taken) == 5000 == len(np.unique(taken))
    expected = np.bincount(labels) * 5000 / len(labels)
    assert np.abs(np.bincount(labels[taken]) - expected).max() < 1


def test_train_limit_takes_a_stratified_subset(raw_dir, tmp_path) -> None:
    summary = prepare(raw_dir, tmp_path, train_limit=100)
    assert summary["train"]["class_counts"] == [10] * 10
    assert summary["val"]["size"] == 50 and summary["test"]["size"] == 200


def test_same_seed_same_bytes_other_seed_other_split(raw_dir, tmp_path) -> None:
    prepare(raw_dir, tmp_path / "a")
    prepare(raw_dir, tmp_path / "b")
    prepare(raw_dir, tmp_path / "c", seed=8)
    for part in ("train", "val", "test"):
        for array in ("x.npy", "y.npy"):
            a = (tmp_path / "a" / "prepared" / part / array).read_bytes()
            assert a == (tmp_path / "b" / "prepared" / part / array).read_bytes()
    a_val = (tmp_path / "a" / "prepared" / "val" / "x.npy").read_bytes()
    assert a_val != (tmp_path / "c" / "prepared" / "val" / "x.npy").read_bytes()


def test_rows_become_time_steps_scaled_to_unit_range() -> None:
    images = np.zeros((1, 28, 28), dtype=np.uint8)
    images[0, 5, :] = 255
    images[0, 6, 3] = 51
    sequences = to_sequences(images)
    assert sequences[0, 5].tolist() == [1.0] * 28
    assert sequences[0, 6, 3] == pytest.approx(0.2)


def test_val_size_must_leave_training_data() -> None:
    with pytest.raises(UserError, match=r"prepare\.val_size must be below the 20 training images"):
        train_val_indices(np.arange(20) % 10, PrepareParams(val_size=20, train_limit=0, seed=0))


def test_mismatched_image_and_label_counts(raw_dir, tmp_path) -> None:
    labels = np.zeros(3, dtype=np.uint8)
    (raw_dir / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(labels))
    with pytest.raises(UserError, match="t10k has 200 images but 3 labels"):
        prepare(raw_dir, tmp_path)
    assert not (tmp_path / "prepared").exists()
