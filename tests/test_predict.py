"""`python -m stages.predict` on the e2e repo's trained model, and its one-line errors."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages.dataset import load_split, to_sequences
from stages.errors import UserError
from stages.predict import read_digits
from tests.e2e import sh
from tests.helpers import encode_idx


def write_png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def test_predict_prints_the_digit_of_png_jpeg_npy_and_idx_inputs(
    repo: Path, tmp_path: Path
) -> None:
    x, y = load_split(repo / "data/prepared/test")
    rows = pd.read_csv(repo / "reports/predictions.csv")
    right = np.flatnonzero(rows.actual == rows.predicted)[:8]
    pixels = np.rint(x[right] * 255).astype(np.uint8)
    assert np.array_equal(to_sequences(pixels), x[right])  # the PNGs hold the exact pixels
    pngs = [write_png(tmp_path / f"digit-{i}.png", pixels[i]) for i in range(3)]
    np.save(tmp_path / "two.npy", pixels[3:5])
    (tmp_path / "two-idx3-ubyte").write_bytes(encode_idx(pixels[5:7]))
    jpeg = tmp_path / "digit.jpg"
    Image.fromarray(pixels[7]).convert("RGB").save(jpeg, quality=95)  # color, lossy: still read
    inputs = [*pngs, tmp_path / "two.npy", tmp_path / "two-idx3-ubyte", jpeg]
    result = sh(repo, "python", "-m", "stages.predict", *map(str, inputs))
    names = [f"{p}" for p in pngs] + [f"{tmp_path / 'two.npy'}[{i}]" for i in (0, 1)]
    names += [f"{tmp_path / 'two-idx3-ubyte'}[{i}]" for i in (0, 1)] + [str(jpeg)]
    lines = result.stdout.splitlines()
    assert len(lines) == 8
    for line, name, digit in zip(lines, names, y[right], strict=True):
        assert line.startswith(f"{name}: {digit} (probability 0.")


def test_a_missing_file_is_one_line_on_stderr(repo: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    result = sh(repo, "python", "-m", "stages.predict", str(missing), check=False)
    assert result.returncode == 1
    assert result.stderr == f"error: {missing}: cannot read (No such file or directory)\n"


def test_missing_model_is_named(repo: Path, tmp_path: Path) -> None:
    digit = write_png(tmp_path / "d.png", np.zeros((28, 28), np.uint8))
    args = ("python", "-m", "stages.predict", "--model", "absent.keras", str(digit))
    result = sh(repo, *args, check=False)
    assert result.returncode == 1
    assert result.stderr == "error: absent.keras: not found (run `dvc repro`, or `dvc pull` it)\n"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.txt", b"hello", "not a PNG, JPEG, .npy or IDX file"),
        ("broken.png", b"\x89PNG\r\n\x1a\nrest", "not a readable PNG or JPEG image"),
        ("labels-idx1-ubyte", encode_idx(np.arange(5, dtype=np.uint8)), "got 5"),
    ],
)
def test_unreadable_inputs_are_named(tmp_path: Path, name: str, content: bytes, expected) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=expected) as caught:
        read_digits(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_wrong_shapes_and_float_arrays_are_refused(tmp_path: Path) -> None:
    big = write_png(tmp_path / "big.png", np.zeros((32, 40), np.uint8))
    with pytest.raises(UserError, match=r"expected 28x28 pixels .*, got 32x40$"):
        read_digits(big)
    np.save(tmp_path / "scaled.npy", np.zeros((28, 28), np.float32))
    with pytest.raises(UserError, match=r"expected uint8 pixels 0\.\.255, got float32"):
        read_digits(tmp_path / "scaled.npy")
    np.save(tmp_path / "one.npy", np.zeros((28, 28), np.uint8))
    assert read_digits(tmp_path / "one.npy").shape == (1, 28, 28)
