"""Reading a user's image file (PNG/JPEG, via Pillow) the way the training data looks."""
from __future__ import annotations

import warnings

import numpy as np


def load_image(path: str, channels: int, size: int, invert: bool = False) -> np.ndarray:
    """-> uint8 (channels, size, size): grey or RGB, resized (bilinear) to size x size."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise ImportError("reading images needs Pillow: pip install 'convgrad[cli]'") from exc
    try:
        with warnings.catch_warnings():
            # a file declaring more pixels than Pillow's limit is refused before it is decoded
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.BILINEAR)
                pixels = np.asarray(img, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"could not read image {path!r}: it declares too many pixels "
                         f"(a decompression bomb?): {exc}") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"could not read image {path!r}: {exc}") from exc
    pixels = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return 255 - pixels if invert else pixels
