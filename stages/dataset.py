"""The prepared-split format shared by prepare (writer) and train/evaluate (readers).

Each split is a folder with x.npy (float32 N x 28 x 28) and y.npy (uint8 N): plain .npy,
so loading is fast, memory-mappable and never unpickles anything.
"""

from pathlib import Path

import numpy as np


def save_split(folder: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Write one split into `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "x.npy", x, allow_pickle=False)
    np.save(folder / "y.npy", y, allow_pickle=False)


def load_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """One split's sequences and labels."""
    return (
        np.load(folder / "x.npy", allow_pickle=False),
        np.load(folder / "y.npy", allow_pickle=False),
    )
