"""Any digit image made into MNIST's form: 28x28, white ink on black, fitted and centred.

The model only ever saw MNIST's digits, and those were made in one way (LeCun, Cortes and
Burges' description of the data set): the ink's bounding box scaled to fit a 20x20 box,
aspect ratio kept, anti-aliased, then placed in a 28x28 field so that its centre of mass
is at the centre. A user's digit is rarely like that: black on white, large on a page, on
a transparent canvas, a photo of grey paper. Fed raw, an inverted MNIST digit is read
right 8% of the time, confidently. So `as_mnist` repeats MNIST's making, one step per
function: alpha, grey, polarity, stretch, the no-ink check, crop, scale, placement.

An image already in MNIST's form (28x28, dark background) goes in exactly as it is, so
MNIST's own digits keep exactly the answers evaluate gives them. Pure numpy and Pillow:
predict prepares every input before it imports TensorFlow.
"""

import numpy as np
from PIL import Image

SIDE = 28  # MNIST's field
BOX = 20  # the box MNIST fitted each digit's ink into
# Where MNIST's digits have their centre of mass, in pixel indices: the test set's mean
# is (13.99, 14.01), spread evenly over +-0.5, so MNIST shifted by whole pixels to 14.
CENTRE = 14.0
NOISE_SIGMAS = 4  # paper noise above this many deviations counts as ink
RIPPLE = 2 / 255  # ...and on clean paper, with no noise to measure, dither or JPEG's ripple
MIN_CONTRAST = 0.1  # ink fainter than this (of full scale) over the paper is no ink
MIN_SNR = 8  # ...and ink whose contrast is below this many noise deviations
INK_PERCENTILE = 75  # the ink's full strength: this percentile of what stands out
MIN_STROKE = 3  # a digit has at least this many ink pixels that touch another
SPECK = 0.01  # ink set apart from the rest and holding less than this share is noise


class NoDigitError(ValueError):
    """The image holds no ink that stands out from its background: no digit to read."""


def as_mnist(pixels: np.ndarray) -> np.ndarray:
    """uint8 28x28 in MNIST's form from uint8 pixels: grey (H, W), RGB (H, W, 3) or RGBA
    (H, W, 4). Raises NoDigitError if there is no ink."""
    return digit_and_ink(pixels)[0]


def digit_and_ink(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """as_mnist's digit, and the ink it was made from: (H, W) in [0, 1] where the image
    had it. The 28x28 digit is always centred and full size; the drawing page asks the
    ink what the digit no longer tells (`touches_edge`, `ink_size`)."""
    grey = to_grey(flatten_alpha(pixels))
    inverted = is_dark_on_light(grey)
    ink = stretch(1 - grey if inverted else grey)
    check_ink(ink)
    if grey.shape == (SIDE, SIDE) and not inverted:
        return to_uint8(grey), ink
    return to_uint8(place_by_centre_of_mass(fit_box(crop(ink)))), ink


def flatten_alpha(pixels: np.ndarray) -> np.ndarray:
    """Colour (or grey) in [0, 1] with any transparency composited onto a background.

    The colour under a transparent pixel means nothing: a canvas export draws black ink
    on transparent black (0, 0, 0, 0), so dropping alpha would leave black on black. The
    background is chosen to contrast with the ink, the alpha-weighted mean brightness of
    what is drawn: white behind dark ink, black behind light ink."""
    values = pixels.astype(np.float32) / 255
    if pixels.ndim == 2 or pixels.shape[2] == 3:
        return values
    colour, alpha = values[..., :-1], values[..., -1:]
    drawn = (to_grey(colour)[..., None] * alpha).sum() / max(float(alpha.sum()), 1e-6)
    background = 1.0 if drawn < 0.5 else 0.0
    return colour * alpha + background * (1 - alpha)


def to_grey(colour: np.ndarray) -> np.ndarray:
    """(H, W) brightness in [0, 1]: ITU-R 601 luma, the weights Pillow's "L" uses. They
    add up to 1, so a grey image saved as colour keeps its grey levels."""
    if colour.ndim == 2:
        return colour
    return colour @ np.array([0.299, 0.587, 0.114], np.float32)


def border(grey: np.ndarray) -> np.ndarray:
    """The outer ring of pixels, 1/28 of the shorter side wide: the paper, as a digit is
    drawn away from the edges."""
    width = max(1, min(grey.shape) // SIDE)
    rows = np.concatenate([grey[:width], grey[-width:]], axis=None)
    return np.concatenate([rows, grey[:, :width], grey[:, -width:]], axis=None)


def is_dark_on_light(grey: np.ndarray) -> bool:
    """Whether the ink is darker than its paper, decided from the image itself: the paper
    is the border's median, and the ink is what departs from it, mostly one way. The
    border alone would misread dark grey paper; the mean departure does not."""
    return bool(np.mean(grey - np.median(border(grey))) < 0)


def stretch(grey: np.ndarray) -> np.ndarray:
    """Light ink on dark paper in [0, 1] -> background 0, ink 1, as MNIST's digits are.

    The paper's level and noise come from the border (its median, and its median
    absolute deviation as a robust spread): everything up to NOISE_SIGMAS deviations
    above the paper (at least RIPPLE) becomes 0, so grey paper, camera noise and JPEG
    speckle vanish. The ink's level is a high percentile of what is left, so a pen that
    is dark grey rather than black reaches full strength. Ink that does not stand out
    from the paper (less than MIN_CONTRAST, or than MIN_SNR deviations of its noise)
    stretches to nothing: noise stretched to full strength would look like ink."""
    paper = border(grey)
    level = float(np.median(paper))
    noise = 1.4826 * float(np.median(np.abs(paper - level)))
    low = level + max(NOISE_SIGMAS * noise, RIPPLE)
    above = grey[grey > low]
    high = float(np.percentile(above, INK_PERCENTILE)) if above.size else level
    if high - level < max(MIN_CONTRAST, MIN_SNR * noise):
        return np.zeros_like(grey)
    return np.clip((grey - low) / (high - low), 0, 1)


def touching(mask: np.ndarray) -> np.ndarray:
    """The pixels of mask with at least one of their 8 neighbours also in mask: strokes,
    without the isolated specks that noise leaves."""
    padded = np.pad(mask, 1)
    height, width = mask.shape
    neighbours = np.zeros_like(mask)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                neighbours |= padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
    return mask & neighbours


def check_ink(ink: np.ndarray) -> None:
    """Raise NoDigitError unless the stretched image holds strokes: at least MIN_STROKE
    pixels of at least half strength that touch another, and most such pixels touching.
    A blank or uniform image stretches to nothing, and noise that survives the stretch
    is specks, not strokes. A guess on no digit is worse than no answer."""
    strong = ink >= 0.5
    joined = int(touching(strong).sum())
    if joined < MIN_STROKE or joined < strong.sum() / 2:
        raise NoDigitError("no digit found")


def crop(ink: np.ndarray) -> np.ndarray:
    """The ink's bounding box, as MNIST measured each digit's: every pixel of ink, down to
    its faintest anti-aliased edge, but not a speck of noise apart from the strokes."""
    top, bottom = extent(ink.sum(axis=1))
    left, right = extent(ink.sum(axis=0))
    return ink[top:bottom, left:right]


def ink_size(ink: np.ndarray) -> float:
    """The longer side of the ink's bounding box (crop's) over the image's shorter side:
    how large the marks were drawn, which scaling them into the 20x20 box hides. A dot
    and a dash come out of it as large as a digit."""
    height, width = crop(ink).shape
    return max(height, width) / min(ink.shape)


def touches_edge(ink: np.ndarray) -> bool:
    """Whether strokes reach the image's border (its outer 1/28, one pixel at MNIST's
    scale): a digit cut off by the edge of a drawing pad or a photo is prepared, centred
    and read as if it were whole."""
    return bool(border(touching(ink >= 0.5)).any())


def extent(profile: np.ndarray) -> tuple[int, int]:
    """Start and end (exclusive) of the ink along one axis, from its profile (the ink in
    each row, or column). Runs of inked rows set apart by blank ones at either end, which
    together hold under SPECK of the ink, are noise or a smudge: they are left out, so
    they cannot widen the box that the digit is scaled by. Only whole runs at the ends
    go, so at least 98% of the ink stays, and a digit's faint edge, which touches its
    strokes, is never cut."""
    inked = np.concatenate([[0], (profile > 0).astype(np.int8), [0]])
    starts, stops = np.flatnonzero(np.diff(inked) == 1), np.flatnonzero(np.diff(inked) == -1)
    mass = np.array([profile[a:b].sum() for a, b in zip(starts, stops, strict=True)])
    share = mass / mass.sum()
    first = np.searchsorted(np.cumsum(share), SPECK)
    last = len(mass) - 1 - np.searchsorted(np.cumsum(share[::-1]), SPECK)
    return int(starts[first]), int(stops[last])


def fit_box(ink: np.ndarray) -> np.ndarray:
    """The crop scaled so that its longer side is BOX pixels, aspect ratio kept (a "1"
    stays thin), anti-aliased: Pillow's Lanczos filter averages over every source pixel
    when it shrinks, and interpolates smoothly when it enlarges a small digit."""
    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized), 0, 1)  # Lanczos overshoots a little at edges


def place_by_centre_of_mass(digit: np.ndarray) -> np.ndarray:
    """The fitted digit in a 28x28 field, shifted by whole pixels (as MNIST's were) so that
    its centre of mass lands within half a pixel of CENTRE. A digit whose mass sits far
    to one side would be cut by the edge there; it is kept whole, off centre, instead."""
    height, width = digit.shape
    mass = digit.sum()
    row = float((digit.sum(axis=1) * np.arange(height)).sum() / mass)
    col = float((digit.sum(axis=0) * np.arange(width)).sum() / mass)
    top = min(max(int(np.floor(CENTRE - row + 0.5)), 0), SIDE - height)
    left = min(max(int(np.floor(CENTRE - col + 0.5)), 0), SIDE - width)
    field = np.zeros((SIDE, SIDE), np.float32)
    field[top : top + height, left : left + width] = digit
    return field


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.rint(image * 255).astype(np.uint8)
