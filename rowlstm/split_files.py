"""The prepared-split format: prepare writes it; train, evaluate and predict read it.

Each split is a folder with x.npy (float32 N x 28 x 28) and y.npy (uint8 N): plain .npy,
so loading is fast, memory-mappable and never unpickles anything.
"""

from pathlib import Path

import numpy as np

from rowlstm.errors import UserError, one_line
from rowlstm.idx import IMAGE_SIDE


def to_sequences(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28) in [0, 1]: 28 rows read as 28 time steps.

    prepare writes its splits with it, and predict applies it to a user's images."""
    return images.astype(np.float32) / np.float32(255)


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
