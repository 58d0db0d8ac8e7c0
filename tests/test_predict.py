"""`python -m tools.predict` on the e2e repo's trained model, and its one-line errors."""

import io
import re
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rowlstm.digits import as_mnist
from rowlstm.errors import UserError
from rowlstm.split_files import load_split, to_sequences
from tests.e2e import sh
from tests.helpers import FOUR, SEVEN, drawn_digit, encode_idx
from tools.predict import read_digits


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
    result = sh(repo, "python", "-m", "tools.predict", *map(str, inputs))
    names = [f"{p}" for p in pngs] + [f"{tmp_path / 'two.npy'}[{i}]" for i in (0, 1)]
    names += [f"{tmp_path / 'two-idx3-ubyte'}[{i}]" for i in (0, 1)] + [str(jpeg)]
    lines = result.stdout.splitlines()
    assert len(lines) == 8
    for line, name, digit in zip(lines, names, y[right], strict=True):
        assert line.startswith(f"{name}: {digit} (probability 0.")


def test_a_missing_file_is_one_line_on_stderr(repo: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    result = sh(repo, "python", "-m", "tools.predict", str(missing), check=False)
    assert result.returncode == 1
    assert result.stderr == f"error: {missing}: cannot read (No such file or directory)\n"


def test_missing_model_is_named(repo: Path, tmp_path: Path) -> None:
    digit = write_png(tmp_path / "d.png", drawn_digit(SEVEN, side=28))
    args = ("python", "-m", "tools.predict", "--model", "absent.keras", str(digit))
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


def test_an_image_of_any_size_is_read_and_prepared(tmp_path: Path) -> None:
    """A black-on-white digit on a 32x40 PNG, as a 16-bit PNG, or in a stack of .npy
    arrays: each reads as the prepared white-on-black digit, in MNIST's 28x28."""
    seven = drawn_digit(SEVEN, side=32)
    page = np.full((32, 40), 255, np.uint8)
    page[:, 4:36] = 255 - seven
    expected = as_mnist(seven)
    assert np.array_equal(read_digits(write_png(tmp_path / "page.png", page))[0], expected)
    deep = write_png(tmp_path / "deep.png", page.astype(np.uint16) * 257)  # 16 bits a pixel
    assert np.array_equal(read_digits(deep)[0], expected)
    four = as_mnist(drawn_digit(FOUR))  # in MNIST's form
    np.save(tmp_path / "stack.npy", np.stack([255 - four, four]))
    inverted, unchanged = read_digits(tmp_path / "stack.npy")
    assert np.array_equal(inverted, as_mnist(255 - four)) and np.array_equal(unchanged, four)
    assert np.corrcoef(inverted.ravel(), four.ravel())[0, 1] > 0.99


def test_a_photo_sized_page_is_shrunk_first_and_reads_as_a_small_one(tmp_path: Path) -> None:
    """A 3000x2000 page is worked on at 1024 pixels at most: the same digit as on a page
    of that size, without the memory of twelve float copies of six megapixels."""
    seven = 255 - drawn_digit(SEVEN, side=1200)
    large = np.full((2000, 3000), 255, np.uint8)
    large[400:1600, 900:2100] = seven
    small = np.asarray(Image.fromarray(large).resize((1024, 683), Image.Resampling.BOX))
    path = write_png(tmp_path / "large.png", large)
    tracemalloc.start()
    read = read_digits(path)[0].astype(int)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40e6  # one float32 copy at full size alone is 24 MB
    assert np.abs(read - as_mnist(small)).max() <= 8  # the same, up to rounding at edges


def test_a_blank_image_is_no_digit_found(tmp_path: Path) -> None:
    blank = write_png(tmp_path / "blank.png", np.full((32, 40), 255, np.uint8))
    with pytest.raises(UserError, match=f"^{re.escape(str(blank))}: no digit found$"):
        read_digits(blank)
    stack = np.stack([drawn_digit(SEVEN, side=28), np.zeros((28, 28), np.uint8)])
    np.save(tmp_path / "stack.npy", stack)
    with pytest.raises(UserError, match=r"stack\.npy\[1\]: no digit found$"):
        read_digits(tmp_path / "stack.npy")


def test_wrong_shapes_and_float_arrays_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "wide.npy", np.zeros((32, 40), np.uint8))
    with pytest.raises(UserError, match=r"expected 28x28 pixels .*, got 32x40$"):
        read_digits(tmp_path / "wide.npy")
    np.save(tmp_path / "scaled.npy", np.zeros((28, 28), np.float32))
    with pytest.raises(UserError, match=r"expected uint8 pixels 0\.\.255, got float32"):
        read_digits(tmp_path / "scaled.npy")
    np.save(tmp_path / "one.npy", drawn_digit(SEVEN, side=28))
    assert read_digits(tmp_path / "one.npy").shape == (1, 28, 28)


def png_header(width: int, height: int) -> bytes:
    """A PNG's signature, header and an empty data chunk: all Pillow reads before decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"")


def npy_header(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def small_png() -> bytes:
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bomb.png", png_header(100_000, 100_000), "refused, far too large for a digit"),
        (
            "wide.png",
            png_header(5000, 4000),
            r"refused, far too large for a digit \(5000x4000 pixels; at most 16,777,216",
        ),
        ("phone.png", png_header(4000, 3000), "not a readable PNG or JPEG image"),  # decoded
        ("cut.png", small_png()[:400], "not a readable PNG or JPEG image"),
        (
            "lying.npy",
            npy_header((10**9, 28, 28)) + bytes(10),
            "header declares 1000000000x28x28 pixels but the file holds 10 bytes",
        ),
        (
            "lying-idx3-ubyte",
            b"\x00\x00\x08\x03" + struct.pack(">3I", 10**6, 28, 28) + bytes(100),
            "header declares 1000000x28x28 pixels but the file holds 100 bytes",
        ),
        ("empty.npy", b"\x93NUMPY", "not a readable .npy array"),
        ("odd-idx", b"\x00\x00\x08\x09" + bytes(10_000), "9 dimensions declared"),
    ],
)
def test_any_file_is_one_line_bounded_by_its_header(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    """A lying header costs nothing: its claim is checked before a pixel is read."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=expected):
        read_digits(path)


def test_an_object_array_is_refused_before_it_is_unpickled(tmp_path: Path) -> None:
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match=r"expected uint8 pixels 0\.\.255, got object"):
        read_digits(tmp_path / "objects.npy")


def test_explain_prints_the_running_guess_after_each_row(repo: Path, tmp_path: Path) -> None:
    x, _ = load_split(repo / "data/prepared/test")
    path = write_png(tmp_path / "digit.png", np.rint(x[0] * 255).astype(np.uint8))
    lines = sh(repo, "python", "-m", "tools.predict", "--explain", str(path)).stdout
    lines = lines.splitlines()
    assert [re.match(r"row (\d+): \d \(\d\.\d\d\)$", line)[1] for line in lines[:28]] == [
        str(row) for row in range(1, 29)
    ]
    assert len(lines) == 29 and lines[28].startswith(f"{path}: ")  # then the answer, as
    assert lines[27].split()[2] == lines[28].split()[1]  # without --explain: row 28's guess


def test_show_writes_the_image_the_model_was_given_for_each_input(
    repo: Path, tmp_path: Path
) -> None:
    """Named by place and stem: unique for two inputs of one name, and for a stack's."""
    seven = drawn_digit(SEVEN, side=140)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    inputs = [write_png(tmp_path / "a/digit.png", 255 - seven), tmp_path / "b/digit.png"]
    Image.fromarray(seven).save(inputs[1])
    np.save(tmp_path / "two.npy", np.stack([drawn_digit(FOUR, side=28)] * 2))
    inputs.append(tmp_path / "two.npy")
    shown = tmp_path / "shown"
    result = sh(repo, "python", "-m", "tools.predict", "--show", str(shown), *map(str, inputs))
    assert len(result.stdout.splitlines()) == 4
    names = ["1-digit.png", "2-digit.png", "3-two-0.png", "3-two-1.png"]
    assert sorted(path.name for path in shown.iterdir()) == names
    expected = [as_mnist(seven), as_mnist(seven), *read_digits(tmp_path / "two.npy")]
    for name, digit in zip(names, expected, strict=True):
        assert np.array_equal(np.asarray(Image.open(shown / name)), digit), name
