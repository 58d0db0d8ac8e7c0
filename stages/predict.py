"""Read digits from image files and print what the trained model sees in each.

    python -m stages.predict digit.png more.jpg batch.npy t10k-images-idx3-ubyte

Inputs are 28x28 grayscale digits as MNIST draws them, white (255) on black (0): PNG or
JPEG (color is converted to gray), a .npy array of uint8 pixels shaped (28, 28) or
(N, 28, 28), or an IDX image file. Nothing is resized: MNIST digits are centred in a 20x20
box by their centre of mass, and a blind resize of another picture would mislead rather
than help. Pixels go through the same `to_sequences` as prepare's, so the model sees exactly what
it was trained and evaluated on. Not a pipeline stage: dvc.yaml does not run it.
"""

import argparse
import os
from pathlib import Path

import numpy as np

from stages.dataset import to_sequences
from stages.errors import UserError, cli
from stages.idx import IMAGE_SIDE, parse_idx

MODEL = Path("models/model.keras")
PNG, JPEG, NPY = b"\x89PNG", b"\xff\xd8\xff", b"\x93NUMPY"


def read_digits(path: Path) -> np.ndarray:
    """uint8 (N, 28, 28) pixels from one file, told apart by content rather than name."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    if data.startswith((PNG, JPEG)):
        pixels = decode_image(path)
    elif data.startswith(NPY):
        pixels = load_npy(path)
    elif data[:3] == b"\x00\x00\x08":
        pixels = parse_idx(data, str(path))
    else:
        raise UserError(f"{path}: not a PNG, JPEG, .npy or IDX file")
    if pixels.ndim not in (2, 3) or pixels.shape[-2:] != (IMAGE_SIDE, IMAGE_SIDE):
        shape = "x".join(map(str, pixels.shape))
        raise UserError(f"{path}: expected 28x28 pixels (or N x 28 x 28), got {shape}")
    return pixels.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)


def decode_image(path: Path) -> np.ndarray:
    """Gray pixels of a PNG or JPEG, read with Pillow: TensorFlow would print its start-up
    log lines before a one-line error about a broken file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise UserError(f"{path}: not a readable PNG or JPEG image") from None


def load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise UserError(f"{path}: not a readable .npy array ({error})") from None
    if array.dtype != np.uint8:
        raise UserError(
            f"{path}: expected uint8 pixels 0..255, got {array.dtype} "
            "(data/prepared/*/x.npy is already scaled: multiply it by 255 and cast to uint8)"
        )
    return array


def run(model_path: Path, paths: list[Path]) -> list[tuple[str, int, float]]:
    """(name, digit, probability) for every image in paths, in order; name[i] for stacks."""
    batches = [(path, read_digits(path)) for path in paths]
    if not model_path.exists():
        raise UserError(f"{model_path}: not found (run `dvc repro`, or `dvc pull` it)")
    from stages.model import load_classifier  # imports Keras: only once the inputs are good

    model = load_classifier(model_path)
    results = []
    for path, pixels in batches:
        probabilities = model.predict(to_sequences(pixels), verbose=0)
        for index, row in enumerate(probabilities):
            name = str(path) if len(pixels) == 1 else f"{path}[{index}]"
            digit = int(row.argmax())
            results.append((name, digit, float(row[digit])))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="Predict the digit in each image.")
    parser.add_argument("images", nargs="+", type=Path, help="PNG, JPEG, .npy or IDX files")
    parser.add_argument("--model", type=Path, default=MODEL, help=f"default: {MODEL}")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ log spam, not errors
    for name, digit, probability in run(args.model, args.images):
        print(f"{name}: {digit} (probability {probability:.4f})")


if __name__ == "__main__":
    cli(main)
