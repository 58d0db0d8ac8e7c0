"""Stage 2: IDX files -> float32 sequence tensors with a stratified, seeded validation split.

Each image becomes 28 time steps of 28 features (its rows), scaled to [0, 1]. Splits are
saved as plain .npy (no pickle) so train and evaluate can load or memory-map them fast.
"""

import json
from pathlib import Path

import numpy as np

from rowlstm.atomic import staged_dir, staged_file
from rowlstm.dataset import save_split, to_sequences
from rowlstm.errors import UserError, cli
from rowlstm.idx import NUM_CLASSES, read_images, read_labels
from rowlstm.params import PrepareParams, load_params
from rowlstm.paths import PreparePaths


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


def split(labels: np.ndarray, params: PrepareParams) -> tuple[np.ndarray, np.ndarray]:
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


def run(params: PrepareParams, paths: PreparePaths) -> dict:
    """Write {train,val,test}/{x,y}.npy under paths.prepared, and the split sizes and class
    counts to paths.report."""
    train_images, train_labels = read_raw(paths.raw, "train")
    test_images, test_labels = read_raw(paths.raw, "t10k")
    train, val = split(train_labels, params)
    parts = {
        "train": (train_images[train], train_labels[train]),
        "val": (train_images[val], train_labels[val]),
        "test": (test_images, test_labels),
    }
    summary = {}
    with staged_dir(paths.prepared) as staging:
        for name, (images, labels) in parts.items():
            save_split(staging / name, to_sequences(images), labels)
            counts = np.bincount(labels, minlength=NUM_CLASSES)
            summary[name] = {"size": len(labels), "class_counts": counts.tolist()}
        with staged_file(paths.report) as staged_report:
            staged_report.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main() -> None:
    params = load_params()
    run(params.prepare, PreparePaths())


if __name__ == "__main__":
    cli(main)
