"""Stage 2: IDX files -> float32 sequence tensors with a stratified, seeded validation split.

Each image becomes 28 time steps of 28 features (its rows), scaled to [0, 1]. The reading
and the split: rowlstm/prepare_split.py; the files each split is saved as:
rowlstm/split_files.py.
"""

import json

import numpy as np

from rowlstm.atomic import staged_dir, staged_file
from rowlstm.errors import cli
from rowlstm.idx import NUM_CLASSES
from rowlstm.params import PrepareParams, load_params
from rowlstm.paths import PreparePaths
from rowlstm.prepare_split import read_raw, train_val_indices
from rowlstm.split_files import save_split, to_sequences


def run(params: PrepareParams, paths: PreparePaths) -> dict:
    """Write {train,val,test}/{x,y}.npy under paths.prepared, and the split sizes and class
    counts to paths.report."""
    train_images, train_labels = read_raw(paths.raw, "train")
    test_images, test_labels = read_raw(paths.raw, "t10k")
    train, val = train_val_indices(train_labels, params)
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
