"""How well predict reads digits made the way people make them, not as MNIST stores them.

    python -m bench.user_digits

Draws the first 1,000 MNIST test digits in several styles of a user's digit (black ink on
white, large and off centre on a page, a canvas export with a transparent background, a
JPEG photo of grey paper), saves each as real PNG or JPEG bytes, reads the file back with
predict's own read_digits (which prepares it as MNIST's digits were made, rowlstm/digits.py)
and asks the trained model. Prints a Markdown table: accuracy and median probability of
the answer per style, MNIST's own digits (through the same reading) first. Seeded: the
same model gives the same table.

Each style is a plain function, MNIST digit (uint8 28x28, white on black) and a random
generator -> image file bytes, so tests can draw a digit in it.
"""

import hashlib
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from rowlstm.errors import UserError, cli
from rowlstm.paths import MODEL
from rowlstm.split_files import to_sequences
from tools.predict import read_digits

TEST = Path("data/prepared/test")
COUNT = 1000
BOX = 20  # MNIST fitted each digit's ink into a 20x20 box
Style = Callable[[np.ndarray, np.random.Generator], bytes]


def pen(digit: np.ndarray, height: int) -> np.ndarray:
    """The digit as a pen draws it, its ink `height` pixels tall (as MNIST's box is 20):
    enlarged smoothly, then solid ink with a soft edge where MNIST's grey stroke is above
    half strength. Coverage in [0, 1], cropped to the ink."""
    side = round(digit.shape[0] * height / BOX)
    smooth = Image.fromarray(digit.astype(np.float32) / 255).resize(
        (side, side), Image.Resampling.BICUBIC
    )
    ink = np.clip((np.asarray(smooth) - 0.35) / 0.3, 0, 1)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def placed(ink: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Coverage (height, width) = size with the ink at a random place, off centre."""
    height, width = size
    field = np.zeros(size, np.float32)
    top = rng.integers(0, height - ink.shape[0] + 1)
    left = rng.integers(0, width - ink.shape[1] + 1)
    field[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return field


def painted(coverage: np.ndarray, paper: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """uint8 RGB: the ink colour where coverage is 1, the paper colour where it is 0."""
    mixed = paper * (1 - coverage[..., None]) + ink * coverage[..., None]
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def encoded(image: Image.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()


def black_on_white(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """28x28, black ink on white: what a drawing program's default gives."""
    return encoded(Image.fromarray(255 - digit), "PNG")


def on_a_page(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Blue-black pen on a 400x300 white page, 60 to 200 pixels tall, anywhere on it."""
    coverage = placed(pen(digit, int(rng.integers(60, 201))), (300, 400), rng)
    return encoded(
        Image.fromarray(painted(coverage, np.full(3, 255.0), np.array([20, 30, 110]))), "PNG"
    )


def canvas_black(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 140x140 canvas export: black ink on transparent black (0, 0, 0, 0), the ink only
    in alpha, 80 to 120 pixels tall."""
    coverage = placed(pen(digit, int(rng.integers(80, 121))), (140, 140), rng)
    rgba = np.zeros((140, 140, 4), np.uint8)
    rgba[..., 3] = np.rint(coverage * 255)
    return encoded(Image.fromarray(rgba), "PNG")


def canvas_white(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 280x280 canvas export: white chalk on transparent white (255, 255, 255, 0), the
    ink only in alpha, 120 to 240 pixels tall."""
    coverage = placed(pen(digit, int(rng.integers(120, 241))), (280, 280), rng)
    rgba = np.full((280, 280, 4), 255, np.uint8)
    rgba[..., 3] = np.rint(coverage * 255)
    return encoded(Image.fromarray(rgba), "PNG")


def photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 120x120 JPEG photo: dark grey ink on grey, slightly yellow paper of random
    brightness, a little out of focus, with sensor noise."""
    coverage = placed(pen(digit, int(rng.integers(50, 91))), (120, 120), rng)
    paper = rng.uniform(140, 210) * np.array([1.0, 0.97, 0.88])
    pixels = painted(coverage, paper, np.array([45.0, 45.0, 55.0]))
    blurred = np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(0.8)))
    noisy = np.clip(blurred + rng.normal(0, 6, blurred.shape), 0, 255).astype(np.uint8)
    return encoded(Image.fromarray(noisy), "JPEG", quality=75)


def mnist_png(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """MNIST's own digit, unmodified, as a PNG: goes to the model exactly as it is."""
    return encoded(Image.fromarray(digit), "PNG")


STYLES: dict[str, Style] = {
    "MNIST's own digits (unmodified)": mnist_png,
    "black ink on white, 28x28": black_on_white,
    "pen on a 400x300 white page, off centre": on_a_page,
    "canvas 140x140, black ink on transparent": canvas_black,
    "canvas 280x280, white ink on transparent": canvas_white,
    "JPEG 120x120, dark ink on noisy grey paper": photo,
}


def read_back(style: Style, digits: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The digits drawn in style, each saved as a file and read back by predict's reader:
    the prepared 28x28 images, and which of them were found to hold a digit at all."""
    rng = np.random.default_rng(seed)
    prepared = np.zeros_like(digits)
    found = np.ones(len(digits), bool)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "digit"
        for index, digit in enumerate(digits):
            path.write_bytes(style(digit, rng))
            try:
                prepared[index] = read_digits(path)[0]
            except UserError:
                found[index] = False
    return prepared, found


def measure(model_path: Path) -> str:
    """The Markdown table of every style on the first COUNT test digits."""
    from rowlstm.model import load_classifier  # imports Keras: only when measuring

    x, y = np.load(TEST / "x.npy", mmap_mode="r")[:COUNT], np.load(TEST / "y.npy")[:COUNT]
    digits = np.rint(x * 255).astype(np.uint8)
    model = load_classifier(model_path)
    lines = [
        f"| style | accuracy ({COUNT:,} digits) | median probability | no digit found |",
        "|---|---|---|---|",
    ]
    for seed, (name, style) in enumerate(STYLES.items()):
        prepared, found = read_back(style, digits, seed)
        probabilities = model.predict(to_sequences(prepared), batch_size=250, verbose=0)
        right = found & (probabilities.argmax(axis=1) == y)
        median = np.median(probabilities.max(axis=1)[found])
        lines.append(f"| {name} | {right.mean():.1%} | {median:.4f} | {(~found).sum()} |")
    return "\n".join(lines)


def main() -> None:
    if not MODEL.exists():
        raise UserError(f"{MODEL}: not found (run `dvc repro`, or `dvc pull` it)")
    digest = hashlib.md5(MODEL.read_bytes(), usedforsecurity=False).hexdigest()  # as DVC's
    print(f"{MODEL} (md5 {digest}) on the first {COUNT:,} digits of {TEST}:")
    print(measure(MODEL))


if __name__ == "__main__":
    cli(main)
