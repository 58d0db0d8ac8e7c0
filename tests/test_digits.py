"""rowlstm/digits.py step by step, and bench/user_digits.py's styles read back: synthetic digits
drawn in the test, no model."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from bench.user_digits import STYLES
from rowlstm.digits import (
    NoDigitError,
    as_mnist,
    check_ink,
    crop,
    digit_and_ink,
    fit_box,
    flatten_alpha,
    ink_size,
    is_dark_on_light,
    place_by_centre_of_mass,
    stretch,
    to_grey,
    touches_edge,
)
from tests.helpers import FOUR, ONE, SEVEN, ZERO, drawn_digit, synthetic_digits
from tools.predict import read_digits

DIGITS = {"seven": SEVEN, "one": ONE, "four": FOUR, "zero": ZERO}


# Where MNIST's own digits have their centre of mass (the test set's mean is 13.99, 14.01).
CENTRE = 14.0


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    mass = image.astype(np.float64).sum()
    return float((rows * image).sum() / mass), float((cols * image).sum() / mass)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation of two images, at the best of the shifts by up to a pixel:
    placement rounds to whole pixels, so a digit drawn at another size may land one over."""
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    b = b.ravel().astype(float)
    return max(
        float(np.corrcoef(np.roll(a, shift, axis=(0, 1)).ravel().astype(float), b)[0, 1])
        for shift in shifts
    )


def test_dark_ink_on_light_paper_is_inverted_and_light_on_dark_is_not() -> None:
    white_on_black = drawn_digit(SEVEN)
    assert not is_dark_on_light(white_on_black / 255)
    assert is_dark_on_light(1 - white_on_black / 255)
    dark_grey_paper = 0.4 - 0.3 * white_on_black / 255  # paper below half: still paper
    assert is_dark_on_light(dark_grey_paper)
    assert np.array_equal(as_mnist(255 - white_on_black), as_mnist(white_on_black))


def test_colour_becomes_its_brightness() -> None:
    colours = np.array([[[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.5, 0.5, 0.5]]], np.float32)
    assert np.allclose(to_grey(colours), [[0.299, 0.587, 0.114, 0.5]])


def test_grey_paper_and_its_noise_become_black_and_the_ink_full_strength() -> None:
    ink = drawn_digit(FOUR, side=120) / 255
    noise = np.random.default_rng(0).normal(0, 0.02, ink.shape)
    photo = 0.65 - 0.45 * ink + noise  # dark grey ink on grey paper
    stretched = stretch(1 - photo)
    core = stretched[ink == 1]
    assert np.all(stretched[ink == 0] == 0)  # paper and its noise: black
    assert core.min() > 0.75 and np.median(core) > 0.95  # ink: near full strength...
    assert np.mean(core == 1) > 0.25  # ...and full where it is darkest


def test_a_faint_dither_on_clean_paper_is_paper() -> None:
    """Clean paper has no noise to measure, yet a level or two of dither, or of JPEG's
    ripple, must not count as ink: it would spread the bounding box over the page."""
    page = np.full((300, 400), 255, np.uint8)
    page[np.random.default_rng(0).random(page.shape) < 0.1] = 254
    page[100:200, 150:250] = np.minimum(page[100:200, 150:250], 255 - drawn_digit(SEVEN, 100))
    digit = as_mnist(page)
    assert np.flatnonzero(digit.any(axis=1)).size == 20


def test_the_crop_is_the_ink_s_bounding_box_and_leaves_out_a_distant_speck() -> None:
    ink = np.zeros((60, 60), np.float32)
    ink[10:30, 20:35] = 1
    ink[9, 22:30] = 0.05  # the faint anti-aliased edge belongs to the digit
    ink[55, 55] = ink[56, 55] = 0.8  # a speck of noise, far away
    box = crop(ink)
    assert box.shape == (21, 15)
    assert box[0, 2] == np.float32(0.05) and box[1:, :].min() == 1
    lines = np.zeros((300, 50), np.float32)
    lines[20:270:2, 10:40] = 1  # scanned in lines: 125 apart, none with 1% of the ink
    assert crop(lines).shape == (245, 30)  # only the outermost line each side is dropped


def test_a_tall_thin_digit_keeps_its_aspect_ratio() -> None:
    fitted = fit_box(np.ones((200, 20), np.float32))
    assert fitted.shape == (20, 2)
    one = as_mnist(drawn_digit(ONE))
    rows, cols = np.flatnonzero(one.any(axis=1)), np.flatnonzero(one.any(axis=0))
    assert len(rows) == 20 and len(cols) <= 4


@pytest.mark.parametrize("seed", range(5))
def test_the_centre_of_mass_lands_within_half_a_pixel_of_the_centre(seed: int) -> None:
    rng = np.random.default_rng(seed)
    digit = np.zeros((20, 13), np.float32)
    digit[rng.integers(0, 20, 40), rng.integers(0, 13, 40)] = rng.uniform(0.2, 1, 40)
    digit[3:6, 2:5] = 1  # more mass up and left: the centre of mass is off the box's middle
    placed = place_by_centre_of_mass(digit)
    assert placed.shape == (28, 28) and np.isclose(placed.sum(), digit.sum())
    row, col = centre_of_mass(placed)
    assert abs(row - CENTRE) <= 0.5 and abs(col - CENTRE) <= 0.5


def test_a_digit_with_its_mass_far_to_one_side_stays_whole() -> None:
    digit = np.zeros((20, 20), np.float32)
    digit[:2] = 1
    digit[:, 10] = 0.1  # a faint stem: the centre of mass is near the top
    placed = place_by_centre_of_mass(digit)
    assert np.isclose(placed.sum(), digit.sum())
    assert np.array_equal(placed[8:, 4:24], digit)  # at the bottom edge, not cut there


@pytest.mark.parametrize("name", DIGITS)
def test_a_prepared_digit_fills_the_20_pixel_box_and_is_centred(name: str) -> None:
    digit = as_mnist(drawn_digit(DIGITS[name], side=200))
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    assert max(len(rows), len(cols)) == 20
    row, col = centre_of_mass(digit)
    assert abs(row - CENTRE) <= 0.5 and abs(col - CENTRE) <= 0.5


@pytest.mark.parametrize(
    ("ink", "background"),
    [((0, 0, 0), (0, 0, 0)), ((255, 255, 255), (0, 0, 0)), ((255, 255, 255), (255, 255, 255))],
    ids=["black-on-transparent-black", "white-on-transparent-black", "white-on-transparent-white"],
)
def test_transparency_is_composited_onto_a_background_the_ink_contrasts_with(
    ink: tuple[int, int, int], background: tuple[int, int, int]
) -> None:
    coverage = drawn_digit(SEVEN, side=140)
    rgba = np.zeros((*coverage.shape, 4), np.uint8)
    rgba[..., :3] = np.where(coverage[..., None] > 0, ink, background)
    rgba[..., 3] = coverage
    flat = to_grey(flatten_alpha(rgba))
    assert np.ptp(flat) > 0.99  # the ink stands out at full contrast
    assert np.abs(as_mnist(rgba).astype(int) - as_mnist(coverage)).max() <= 1


def blank_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    noise = np.clip(rng.normal(150, 40, (200, 200)), 0, 255).astype(np.uint8)
    shadow = Image.fromarray(np.pad(np.full((60, 60), 20, np.uint8), 30))  # 8% darker
    salt = np.zeros((120, 120), np.uint8)
    salt[rng.integers(0, 120, 40), rng.integers(0, 120, 40)] = 255
    return {
        "black": np.zeros((28, 28), np.uint8),
        "white": np.full((300, 400), 255, np.uint8),
        "grey": np.full((120, 120), 128, np.uint8),
        "uniform noise": rng.integers(0, 256, (140, 140), dtype=np.uint8),
        "noise on grey": np.clip(rng.normal(150, 12, (120, 120)), 0, 255).astype(np.uint8),
        "blotchy noise": np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(2))),
        "salt noise": salt,
        "faint shadow": 255 - np.asarray(shadow.filter(ImageFilter.GaussianBlur(15))),
        "transparent": np.zeros((140, 140, 4), np.uint8),
    }


@pytest.mark.parametrize("name", blank_images())
def test_an_image_with_no_ink_is_no_digit_found(name: str) -> None:
    with pytest.raises(NoDigitError, match=r"^no digit found$"):
        as_mnist(blank_images()[name])


def test_the_no_ink_check_passes_strokes() -> None:
    check_ink(stretch(drawn_digit(ONE, side=28) / 255))  # a thin "1" in 28x28 is a digit


def test_the_ink_is_where_the_image_had_it_and_the_digit_is_as_mnist_s() -> None:
    page = 255 - drawn_digit(SEVEN)  # black on white
    digit, ink = digit_and_ink(page)
    assert np.array_equal(digit, as_mnist(page))
    assert ink.shape == page.shape and ink[page == 255].max() == 0 and ink[page == 0].min() == 1


def test_the_ink_s_size_is_its_box_over_the_image_s_shorter_side() -> None:
    image = np.zeros((200, 300), np.uint8)
    image[50:90, 100:200] = 255  # 40 x 100 pixels of ink
    assert ink_size(digit_and_ink(image)[1]) == 100 / 200
    image[195, 10] = 255  # a speck apart from the strokes widens nothing (crop's rule)
    assert ink_size(digit_and_ink(image)[1]) == 100 / 200


@pytest.mark.parametrize(("left", "touches"), [(0, True), (6, True), (7, False), (40, False)])
def test_ink_touches_the_edge_within_the_border_s_28th(left: int, touches: bool) -> None:
    image = np.zeros((200, 300), np.uint8)  # the border: 200 // 28 = 7 pixels wide
    image[50:150, left : left + 30] = 255
    assert touches_edge(digit_and_ink(image)[1]) is touches
    assert touches_edge(digit_and_ink(255 - image)[1]) is touches  # dark ink alike


def test_an_image_in_mnist_s_form_goes_in_byte_for_byte() -> None:
    """Dark background, 28x28: as it is, even with the noisy background of the tests'
    synthetic MNIST, so the model sees what evaluate gave it."""
    noisy, _ = synthetic_digits(3, seed=0)
    off_centre = np.zeros((28, 28), np.uint8)
    off_centre[2:12, 3:5] = 255
    for image in [*noisy, off_centre, as_mnist(drawn_digit(FOUR))]:
        assert np.array_equal(as_mnist(image), image) and as_mnist(image).dtype == np.uint8
        assert np.array_equal(as_mnist(np.repeat(image[..., None], 3, axis=2)), image)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", DIGITS)
def test_a_digit_drawn_in_each_style_reads_back_as_its_prepared_self(
    tmp_path: Path, style: str, name: str
) -> None:
    original = as_mnist(drawn_digit(DIGITS[name]))
    path = tmp_path / "digit"
    for seed in range(3):
        path.write_bytes(STYLES[style](original, np.random.default_rng(seed)))
        assert correlation(read_digits(path)[0], original) > 0.9, seed
