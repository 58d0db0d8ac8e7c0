"""Read digits from image files and print what the trained model sees in each.

    python -m tools.predict digit.png photo.jpg batch.npy t10k-images-idx3-ubyte

Inputs: PNG or JPEG of any size up to 4096x4096 pixels (grey, colour or transparent), a
.npy array of uint8 pixels shaped (28, 28) or (N, 28, 28), or an IDX image file. Each
digit is first made into MNIST's form as MNIST's own digits were made (rowlstm/digits.py):
transparency composited, colour to grey, dark ink on light paper inverted, paper to black
and ink to full strength, the ink's bounding box scaled into 20x20 and centred by its
centre of mass in 28x28. An image already in that form (28x28, dark background) goes in
exactly as it is, so MNIST's own digits get evaluate's answers. Then the pixels go through
the same `to_sequences` as prepare's. An image with no ink is "no digit found", never a
guess; whatever file it is handed (any format, size, truncated, huge), it answers with one
line and exit status 1 if it cannot use it.

    python -m tools.predict --explain digit.png
    python -m tools.predict --show seen/ digit.png

--explain prints the running guess after each row, as the model reads the digit top to
bottom, then the answer; --show writes the 28x28 image the model was given for each input
into a folder. Not a pipeline stage: dvc.yaml does not run it.
"""

import argparse
import math
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from rowlstm.atomic import staged_file
from rowlstm.digits import NoDigitError, as_mnist
from rowlstm.errors import UserError, cli, one_line
from rowlstm.idx import IMAGE_SIDE, parse_idx
from rowlstm.images import JPEG, PNG, decode_image
from rowlstm.paths import MODEL
from rowlstm.split_files import to_sequences

NPY = b"\x93NUMPY"


def read_digits(path: Path) -> np.ndarray:
    """uint8 (N, 28, 28) digits in MNIST's form from one file, told apart by content
    rather than name, each prepared as MNIST's own were (rowlstm/digits.py).

    Whatever the file, the work is bounded by its header: the declared shape is checked,
    and against the file's size, before any pixel is decoded or read.
    """
    images = read_images(path)
    names = image_names(path, len(images))
    digits = [prepared(name, image) for name, image in zip(names, images, strict=True)]
    return np.array(digits, np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


def read_images(path: Path) -> list[np.ndarray]:
    """The images in one file as they are stored: one for a PNG or JPEG, N x 28 x 28
    uint8 pixels for a .npy or IDX file."""
    try:
        with path.open("rb") as file:
            head, size = file.read(16), os.fstat(file.fileno()).st_size
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    if head.startswith((PNG, JPEG)):
        return [decode_image(path, str(path))]
    if head.startswith(NPY):
        pixels = load_npy(path, size)
    elif head[:3] == b"\x00\x00\x08":
        pixels = load_idx(path, head, size)
    else:
        raise UserError(f"{path}: not a PNG, JPEG, .npy or IDX file")
    return list(pixels.reshape(-1, IMAGE_SIDE, IMAGE_SIDE))


def image_names(path: Path, count: int) -> list[str]:
    """How answers and errors name each image of a file: the path, or path[i] in a stack."""
    return [str(path)] if count == 1 else [f"{path}[{index}]" for index in range(count)]


def prepared(name: str, image: np.ndarray) -> np.ndarray:
    try:
        return as_mnist(image)
    except NoDigitError:
        raise UserError(f"{name}: no digit found") from None


def check_shape(path: Path, shape: tuple[int, ...]) -> None:
    if len(shape) not in (2, 3) or tuple(shape[-2:]) != (IMAGE_SIDE, IMAGE_SIDE):
        got = "x".join(map(str, shape))
        raise UserError(f"{path}: expected 28x28 pixels (or N x 28 x 28), got {got}")


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


def answers_of(
    model_path: Path, paths: list[Path], every_row: bool = False, show: Path | None = None
) -> list[tuple[str, np.ndarray]]:
    """(name, answers) for every image in paths, in order (name[i] for the images of a stack):
    the 10 probabilities after each row with every_row (rowlstm/row_by_row.py), else after the
    last row only. With show, the 28x28 images the model is given are written there first
    (write_shown)."""
    batches = [(path, read_digits(path)) for path in paths]
    if show is not None:
        write_shown(show, batches)
    if not model_path.exists():
        raise UserError(f"{model_path}: not found (run `dvc repro`, or `dvc pull` it)")
    from rowlstm.model import load_classifier  # imports Keras: only once the inputs are good
    from rowlstm.row_by_row import stepwise

    model = load_classifier(model_path)
    model = stepwise(model) if every_row else model
    results = []
    for path, pixels in batches:
        answers = model.predict(to_sequences(pixels), verbose=0)
        names = image_names(path, len(pixels))
        results.extend(zip(names, answers if every_row else answers[:, None], strict=True))
    return results


def write_shown(folder: Path, batches: list[tuple[Path, np.ndarray]]) -> None:
    """Each prepared digit as a PNG, white on black as MNIST's, named by the input's place
    on the command line and its stem (3-digit.png), and its index in a stack
    (4-batch-0.png): unique even when two inputs share a name."""
    for place, (path, digits) in enumerate(batches, start=1):
        stem = f"{place}-{path.stem}"
        names = [stem] if len(digits) == 1 else [f"{stem}-{i}" for i in range(len(digits))]
        for name, digit in zip(names, digits, strict=True):
            with staged_file(folder / f"{name}.png") as staging:
                Image.fromarray(digit).save(staging, format="PNG")


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
    parser.add_argument(
        "--show",
        type=Path,
        metavar="DIR",
        help="write the 28x28 image the model is given for each input into DIR",
    )
    args = parser.parse_args()
    answered = answers_of(args.model, args.images, every_row=args.explain, show=args.show)
    for name, rows in answered:
        if args.explain:
            for row, probabilities in enumerate(rows, start=1):
                print("row {}: {} ({:.2f})".format(row, *answer(probabilities)))
        print("{}: {} (probability {:.4f})".format(name, *answer(rows[-1])))


if __name__ == "__main__":
    cli(main)
