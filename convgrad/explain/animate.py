"""Animations as GIFs, drawn with Pillow (an optional dependency, imported lazily).

Each frame is a row of panels (steps.Panel): a labelled grid of coloured cells with the
numbers written in; cells under the sliding window get an orange frame, the cell being
written a green one, cells not computed yet stay blank.
"""
from __future__ import annotations

import io

import numpy as np

from .steps import Animation, ExplainError, fmt

CELL, GAP, LABEL_H, MARGIN, MAX_ROW_WIDTH = 30, 22, 20, 10, 960
WINDOW, MARK, GRID, HIDDEN = (255, 140, 0), (0, 150, 60), (170, 170, 170), (238, 238, 238)


def colour(v: float, scale: float) -> tuple:
    """Diverging map: 0 white, positive red, negative blue, full strength at |v| = scale."""
    t = 0.0 if scale <= 0 else max(-1.0, min(1.0, v / scale))
    fade = int(round(255 * (1 - 0.65 * abs(t))))
    return (255, fade, fade) if t >= 0 else (fade, fade, 255)


def _pil():
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise ExplainError("--html needs Pillow to draw the animations: pip install 'convgrad[cli]' "
                           "(or pip install pillow)") from None
    return Image, ImageDraw, ImageFont


def _font(ImageFont, size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:                     # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _layout(panels, font, draw):
    """Top-left corner of every panel, wrapping rows at MAX_ROW_WIDTH. Returns (positions, size)."""
    pos, x, y, row_h, width = [], MARGIN, MARGIN, 0, 0
    for p in panels:
        h, w = p.values.shape
        pw = max(w * CELL, int(draw.textlength(p.label, font=font)))
        if x > MARGIN and x + pw > MAX_ROW_WIDTH:
            x, y, row_h = MARGIN, y + row_h + GAP, 0
        pos.append((x, y))
        x += pw + GAP
        width, row_h = max(width, x), max(row_h, LABEL_H + h * CELL)
    return pos, (width - GAP + MARGIN, y + row_h + MARGIN)


def _draw_panel(draw, p, origin, scale, font, small):
    x0, y0 = origin
    draw.text((x0, y0), p.label, fill=(0, 0, 0), font=font)
    y0 += LABEL_H
    h, w = p.values.shape
    for r in range(h):
        for c in range(w):
            box = (x0 + c * CELL, y0 + r * CELL, x0 + (c + 1) * CELL, y0 + (r + 1) * CELL)
            hidden = p.hidden is not None and p.hidden[r, c]
            draw.rectangle(box, fill=HIDDEN if hidden else colour(p.values[r, c], scale), outline=GRID)
            if not hidden:
                draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), fmt(p.values[r, c]),
                          fill=(0, 0, 0), font=small, anchor="mm")
    for mask, col, inset in ((p.window, WINDOW, 0), (p.mark, MARK, 3)):
        if mask is None:
            continue
        for r, c in np.argwhere(mask):
            box = (x0 + c * CELL + inset, y0 + r * CELL + inset,
                   x0 + (c + 1) * CELL - inset, y0 + (r + 1) * CELL - inset)
            draw.rectangle(box, outline=col, width=3)


def gif_bytes(anim: Animation, frame_ms: int = 700, last_ms: int = 2000) -> bytes:
    """Render an Animation as an animated GIF (looping), returned as bytes."""
    Image, ImageDraw, ImageFont = _pil()
    font, small = _font(ImageFont, 13), _font(ImageFont, 11)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    positions, size = _layout(anim.frames[0], font, probe)
    # one colour scale per panel position, over all frames, so colours do not jump
    scales = [max(float(np.abs(f[k].values).max(initial=0.0)) for f in anim.frames)
              for k in range(len(anim.frames[0]))]
    images = []
    for frame in anim.frames:
        img = Image.new("RGB", size, (255, 255, 255))
        draw = ImageDraw.Draw(img)
        for p, origin, scale in zip(frame, positions, scales):
            _draw_panel(draw, p, origin, scale, font, small)
        # the default (median-cut) quantiser dominates the run time; fast octree without dithering is
        # exact for these few flat colours, up to the anti-aliased text
        images.append(img.quantize(colors=255, method=2, dither=0))   # 2 = FASTOCTREE, 0 = no dithering
    buf = io.BytesIO()
    durations = [frame_ms] * (len(images) - 1) + [last_ms]
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0,
                   disposal=1)
    return buf.getvalue()
