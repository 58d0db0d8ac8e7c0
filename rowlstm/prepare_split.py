"""What the prepare stage does with MNIST's raw IDX files: read and check them, and split
the training images stratified by digit."""

from pathlib import Path

import numpy as np

from rowlstm.errors import UserError
from rowlstm.idx import read_images, read_labels
from rowlstm.params import PrepareParams


def read_raw(raw_dir: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one MNIST split ("train" or "t10k") and check images and labels pair up."""
    images = read_images(raw_dir / f"{prefix}-images-idx3-ubyte")
    labels = read_labels(raw_dir / f"{prefix}-labels-idx1-ubyte")
    if len(images) != len(labels):
        raise UserError(f"{raw_dir}: {prefix} has {len(images)} images but {len(labels)} labels")
    return images, labels


def stratified_take(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `count` samples whose class mix matches `labels` as closely as possible.

    Per-class quotas use the largest-remainder method, so they sum to exactly `count`.
    """
    classes, sizes = np.unique(labels, return_counts=True)
    exact = sizes * count / len(labels)
    quotas = np.floor(exact).astype(int)
    shortfall = count - quotas.sum()
    quotas[np.argsort(-(exact - quotas), kind="stable")[:shortfall]] += 1
    picked = [
        rng.permutation(np.flatnonzero(labels == cls))[:quota]
        for cls, quota in zip(classes, quotas, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def train_val_indices(labels: np.ndarray, params: PrepareParams) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of the training set: a stratified val split, then train_limit."""
    if params.val_size >= len(labels):
        raise UserError(
            f"params.yaml: prepare.val_size must be below the {len(labels)} training images, "
            f"got {params.val_size}"
        )
    rng = np.random.default_rng(params.seed)
    val = stratified_take(labels, params.val_size, rng)
    train = np.setdiff1d(np.arange(len(labels)), val, assume_unique=True)
    if params.train_limit and params.train_limit < len(train):
        train = train[stratified_take(labels[train], params.train_limit, rng)]
    return train, val
