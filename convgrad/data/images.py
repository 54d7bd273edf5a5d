"""Reading image files (PNG/JPEG, via Pillow) the way the training data looks.

    load_image(path, channels=1, size=28)        -> uint8 (1, 28, 28)

A non-square image is padded (fit="pad": to a square of its longer side, with the median colour
of its border) or centre-cropped (fit="crop": the central square of its shorter side) before it
is resized, never squashed. 16-bit greyscale images (PNG mode I;16 / I) are scaled by 255/65535,
not clipped at 255.
"""
from __future__ import annotations

import warnings

import numpy as np

from .._checks import MAX_IMAGE_SIZE, check_choice, check_int

FITS = ("pad", "crop")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class ImageError(ValueError):
    """An image file that cannot be read."""


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("reading images needs Pillow: pip install 'convgrad[cli]'") from exc
    return Image


def open_image(path: str):
    """The decoded image (a loaded PIL Image) with 16-bit and float greyscale scaled to 8-bit mode L."""
    Image = _pil()
    try:
        with warnings.catch_warnings():
            # a file declaring more pixels than Pillow's limit is refused before it is decoded
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"could not read image {path!r}: it declares too many pixels "
                         f"(a decompression bomb?): {exc}") from exc
    except Exception as exc:               # Pillow raises several types for broken files
        raise ImageError(f"could not read image {path!r}: {exc}") from exc
    if img.mode.startswith("I") or img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        scale = 255.0 / 65535.0 if img.mode.startswith("I") and values.max(initial=0) > 255 else 1.0
        img = Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), mode="L")
    return img


def is_grey(img) -> bool:
    return img.mode in GREY_MODES


def check_image_options(where: str, channels, size, fit) -> None:
    """channels 1 or 3 (None: decided from the images), size in [1, MAX_IMAGE_SIZE] (None: the
    images' own), fit 'pad' or 'crop'."""
    if channels is not None and check_int(where, "channels", channels) not in (1, 3):
        raise ValueError(f"{where}: channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    if size is not None:
        check_int(where, "image_size", size, 1, MAX_IMAGE_SIZE)
    check_choice(where, "fit", fit, FITS)


def to_pixels(img, channels: int, size: int, fit: str = "pad") -> np.ndarray:
    """A PIL image -> uint8 (channels, size, size): grey or RGB, made square by `fit`, resized (bilinear)."""
    check_image_options("to_pixels", channels, size, fit)
    Image = _pil()
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    if w != h:
        if fit == "crop":
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            img = img.crop((left, top, left + side, top + side))
        else:
            a = np.asarray(img)
            border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
            colour = tuple(int(v) for v in np.atleast_1d(np.median(border, axis=0)))
            side = max(w, h)
            square = Image.new(img.mode, (side, side), colour[0] if channels == 1 else colour)
            square.paste(img, ((side - w) // 2, (side - h) // 2))
            img = square
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    pixels = np.asarray(img, dtype=np.uint8)
    return pixels[None].copy() if channels == 1 else pixels.transpose(2, 0, 1).copy()


def load_image(path: str, channels: int, size: int, invert: bool = False, fit: str = "pad") -> np.ndarray:
    """-> uint8 (channels, size, size), see to_pixels; `invert` maps v -> 255 - v."""
    check_image_options("load_image", channels, size, fit)
    pixels = to_pixels(open_image(path), channels, size, fit)
    return 255 - pixels if invert else pixels


def border_mean(images: np.ndarray) -> float:
    """Mean of the outermost ring of pixels of uint8 images (N, C, H, W), in [0, 1]: the background level."""
    x = np.asarray(images[:1000], dtype=np.float64) / 255.0
    ring = np.concatenate([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], axis=-1)
    return float(ring.mean())
