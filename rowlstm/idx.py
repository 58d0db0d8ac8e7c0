"""A strict reader for the IDX format MNIST ships in (unsigned-byte payloads only).

It trusts nothing in a header: the declared dimensions must account for exactly the bytes
that follow, checked before anything is allocated, so a lying header can neither crash us
nor make us allocate gigabytes.
"""

import math
import struct
from pathlib import Path

import numpy as np

from rowlstm.errors import UserError

UBYTE = 0x08
IMAGE_SIDE = 28
NUM_CLASSES = 10


class IdxError(UserError):
    """A file that is not the IDX data it claims to be."""


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Decode IDX bytes into a read-only uint8 array; `name` is used in error messages."""
    if len(data) < 4:
        raise IdxError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise IdxError(f"{name}: bad magic number 0x{data[:4].hex()} (not an IDX file)")
    if dtype != UBYTE:
        raise IdxError(f"{name}: element type 0x{dtype:02x} unsupported (expected 0x08)")
    if not 1 <= ndim <= 3:
        raise IdxError(f"{name}: {ndim} dimensions declared (expected 1 to 3)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{name}: header cut short ({len(data)} of {header} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    declared = math.prod(shape)  # Python ints: a lying header cannot wrap around
    if declared != len(data) - header:
        raise IdxError(
            f"{name}: header declares {'x'.join(map(str, shape))} = {declared} bytes "
            f"but {len(data) - header} follow"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_images(path: Path) -> np.ndarray:
    """Images as uint8 (N, 28, 28)."""
    images = parse_idx(_read(path), str(path))
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise IdxError(f"{path}: expected N x 28 x 28 images, got shape {images.shape}")
    return images


def read_labels(path: Path) -> np.ndarray:
    """Labels as uint8 (N,), each a digit 0..9."""
    labels = parse_idx(_read(path), str(path))
    if labels.ndim != 1:
        raise IdxError(f"{path}: expected a 1-dimensional label file, got shape {labels.shape}")
    if labels.size and labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise IdxError(f"{path}: label {labels[bad]} at index {bad} is not a digit 0..9")
    return labels


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise IdxError(f"{path}: cannot read ({error.strerror})") from None
