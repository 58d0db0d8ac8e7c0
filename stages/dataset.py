"""The prepared-split format shared by prepare (writer) and train/evaluate (readers).

Each split is a folder with x.npy (float32 N x 28 x 28) and y.npy (uint8 N): plain .npy,
so loading is fast, memory-mappable and never unpickles anything.
"""

from pathlib import Path

import numpy as np

from stages.errors import UserError, one_line
from stages.idx import IMAGE_SIDE


def save_split(folder: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Write one split into `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "x.npy", x, allow_pickle=False)
    np.save(folder / "y.npy", y, allow_pickle=False)


def load_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """One split's sequences and labels, checked: a stray or damaged file is a UserError."""
    x, y = _load(folder / "x.npy"), _load(folder / "y.npy")
    if x.dtype != np.float32 or x.ndim != 3 or x.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise UserError(f"{folder}/x.npy: expected float32 N x 28 x 28, got {x.dtype} {x.shape}")
    if y.dtype != np.uint8 or y.shape != (len(x),):
        raise UserError(f"{folder}/y.npy: expected {len(x)} uint8 labels, got {y.dtype} {y.shape}")
    return x, y


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UserError(
            f"{path}: cannot load ({one_line(error)}); rerun `dvc repro prepare`"
        ) from None
