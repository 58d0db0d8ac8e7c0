"""Read digits from image files and print what the trained model sees in each.

    python -m stages.predict digit.png more.jpg batch.npy t10k-images-idx3-ubyte

Inputs are 28x28 grayscale digits as MNIST draws them, white (255) on black (0): PNG or
JPEG (color is converted to gray), a .npy array of uint8 pixels shaped (28, 28) or
(N, 28, 28), or an IDX image file. Nothing is resized: MNIST digits are centred in a 20x20
box by their centre of mass, and a blind resize of another picture would mislead rather
than help. Pixels go through the same `to_sequences` as prepare's, so the model sees
exactly what it was trained and evaluated on. Whatever file it is handed (any format,
size, truncated, huge), it answers with one line and exit status 1 if it cannot use it.

    python -m stages.predict --explain digit.png

prints the running guess after each row, as the model reads the digit top to bottom, then
the answer. Not a pipeline stage: dvc.yaml does not run it.
"""

import argparse
import math
import os
import struct
import warnings
from pathlib import Path

import numpy as np

from stages.dataset import to_sequences
from stages.errors import UserError, cli, one_line
from stages.idx import IMAGE_SIDE, parse_idx

MODEL = Path("models/model.keras")
PNG, JPEG, NPY = b"\x89PNG", b"\xff\xd8\xff", b"\x93NUMPY"


def read_digits(path: Path) -> np.ndarray:
    """uint8 (N, 28, 28) pixels from one file, told apart by content rather than name.

    Whatever the file, the work is bounded by its header: the declared shape is checked,
    and against the file's size, before any pixel is decoded or read.
    """
    try:
        with path.open("rb") as file:
            head, size = file.read(16), os.fstat(file.fileno()).st_size
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    if head.startswith((PNG, JPEG)):
        pixels = decode_image(path)
    elif head.startswith(NPY):
        pixels = load_npy(path, size)
    elif head[:3] == b"\x00\x00\x08":
        pixels = load_idx(path, head, size)
    else:
        raise UserError(f"{path}: not a PNG, JPEG, .npy or IDX file")
    return pixels.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


def check_shape(path: Path, shape: tuple[int, ...]) -> None:
    if len(shape) not in (2, 3) or tuple(shape[-2:]) != (IMAGE_SIDE, IMAGE_SIDE):
        got = "x".join(map(str, shape))
        raise UserError(f"{path}: expected 28x28 pixels (or N x 28 x 28), got {got}")


def decode_image(path: Path) -> np.ndarray:
    """Gray pixels of a PNG or JPEG, read with Pillow: TensorFlow would print its start-up
    log lines before a one-line error about a broken file. Pillow reads the header first;
    the size is checked before anything is decoded, and a decompression bomb is refused."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                check_shape(path, (image.height, image.width))
                return np.asarray(image.convert("L"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UserError(f"{path}: refused, far too large for a digit ({one_line(error)})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UserError(f"{path}: not a readable PNG or JPEG image") from None


def load_npy(path: Path, size: int) -> np.ndarray:
    """A .npy array of uint8 pixels; its header's dtype and shape are checked, and the bytes
    they declare against the file's size, before the array is read."""
    try:
        with path.open("rb") as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(file)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(file)
            offset = file.tell()
    except ValueError as error:
        raise UserError(f"{path}: not a readable .npy array ({one_line(error)})") from None
    if dtype != np.uint8:
        raise UserError(
            f"{path}: expected uint8 pixels 0..255, got {dtype} "
            "(data/prepared/*/x.npy is already scaled: multiply it by 255 and cast to uint8)"
        )
    check_shape(path, shape)
    if offset + math.prod(shape) != size:
        raise UserError(
            f"{path}: header declares {'x'.join(map(str, shape))} pixels "
            f"but the file holds {size - offset} bytes of data"
        )
    return np.load(path, allow_pickle=False)


def load_idx(path: Path, head: bytes, size: int) -> np.ndarray:
    """IDX images; the dimensions in the header are checked, and against the file's size,
    before the pixels are read (parse_idx checks the rest)."""
    ndim = head[3] if len(head) > 3 else 0
    if not (1 <= ndim <= 3 and len(head) >= 4 + 4 * ndim):
        return parse_idx(head, str(path))  # refused on its header alone, whatever follows
    shape = struct.unpack(f">{ndim}I", head[4 : 4 + 4 * ndim])
    check_shape(path, shape)
    if 4 + 4 * ndim + math.prod(shape) != size:
        raise UserError(
            f"{path}: header declares {'x'.join(map(str, shape))} pixels "
            f"but the file holds {size - 4 - 4 * ndim} bytes of data"
        )
    return parse_idx(path.read_bytes(), str(path))


def run(model_path: Path, paths: list[Path]) -> list[tuple[str, int, float]]:
    """(name, digit, probability) for every image in paths, in order; name[i] for stacks."""
    return [(name, *answer(rows[-1])) for name, rows in read_rows(model_path, paths)]


def read_rows(
    model_path: Path, paths: list[Path], every_row: bool = False
) -> list[tuple[str, np.ndarray]]:
    """(name, answers) for every image in paths, in order: the 10 probabilities after each
    row with every_row (stages/reading.py), else after the last row only."""
    batches = [(path, read_digits(path)) for path in paths]
    if not model_path.exists():
        raise UserError(f"{model_path}: not found (run `dvc repro`, or `dvc pull` it)")
    from stages.model import load_classifier  # imports Keras: only once the inputs are good
    from stages.reading import stepwise

    model = load_classifier(model_path)
    model = stepwise(model) if every_row else model
    results = []
    for path, pixels in batches:
        answers = model.predict(to_sequences(pixels), verbose=0)
        for index, rows in enumerate(answers if every_row else answers[:, None]):
            results.append((str(path) if len(pixels) == 1 else f"{path}[{index}]", rows))
    return results


def answer(probabilities: np.ndarray) -> tuple[int, float]:
    digit = int(probabilities.argmax())
    return digit, float(probabilities[digit])


def main() -> None:
    parser = argparse.ArgumentParser(description="Predict the digit in each image.")
    parser.add_argument("images", nargs="+", type=Path, help="PNG, JPEG, .npy or IDX files")
    parser.add_argument("--model", type=Path, default=MODEL, help=f"default: {MODEL}")
    parser.add_argument(
        "--explain", action="store_true", help="print the running guess after each row"
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ log spam, not errors
    for name, rows in read_rows(args.model, args.images, every_row=args.explain):
        if args.explain:
            for row, probabilities in enumerate(rows, start=1):
                print("row {}: {} ({:.2f})".format(row, *answer(probabilities)))
        print("{}: {} (probability {:.4f})".format(name, *answer(rows[-1])))


if __name__ == "__main__":
    cli(main)
