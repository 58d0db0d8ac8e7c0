"""A user's PNG or JPEG as pixels, bounded by its header: predict reads files with it, and
the drawing page (tools/serve.py) the bytes a browser sends. Pure Pillow and numpy."""

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rowlstm.errors import UserError, one_line

PNG, JPEG = b"\x89PNG", b"\xff\xd8\xff"
MAX_PIXELS = 4096 * 4096  # a 12-megapixel phone photo is read; a digit needs far fewer
# A larger image is first shrunk (averaging, so anti-aliased) to fit this square: the
# digit ends at 20x20 anyway, and the preparation's float arrays stay a few MB.
WORKING_SIDE = 1024


def decode_image(source: Path | BinaryIO, name: str) -> np.ndarray:
    """uint8 pixels of a PNG or JPEG: grey (H, W), RGB (H, W, 3), or RGBA (H, W, 4) where
    it has transparency; turned upright when a camera's EXIF tag says so. Errors are
    UserErrors that start with name. Read with Pillow: TensorFlow would print its start-up
    log lines before a one-line error about a broken file. Pillow reads the header first;
    the size is checked before anything is decoded, and a decompression bomb is refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=["PNG", "JPEG"]) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise UserError(
                        f"{name}: refused, far too large for a digit ({image.width}x"
                        f"{image.height} pixels; at most {MAX_PIXELS:,}, e.g. 4096x4096)"
                    )
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
                return pixels_of(upright)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UserError(f"{name}: refused, far too large for a digit ({one_line(error)})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UserError(f"{name}: not a readable PNG or JPEG image") from None


def pixels_of(image: Image.Image) -> np.ndarray:
    """Grey stays grey (byte for byte), colour is RGB, and transparency is kept as alpha
    for rowlstm/digits.py to composite."""
    if image.mode == "I;16":  # 16-bit grey: Pillow's convert would clip it to 0 and 255
        return (np.asarray(image) >> 8).astype(np.uint8)
    if image.has_transparency_data:
        return np.asarray(image.convert("RGBA"))
    return np.asarray(image.convert("L" if image.mode in ("1", "L") else "RGB"))
