"""A convolution's arguments normalised and validated once: ConvGeometry.

x (N, C_in, *spatial), w (C_out, C_in/groups, *kernel); padding a (lo, hi) pair per spatial
axis (negative crops); lhs_dilation inserts lhs_dilation-1 zeros between input elements;
dilation (rhs) spaces the kernel taps. Output size per axis:

    out = floor((lhs_dilated + lo + hi - d*(k-1) - 1) / stride) + 1
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._checks import as_tuple, check_float_array, check_int, check_same_dtype, check_shape
from ..im2col import out_size
from ..padding import resolve_padding

LAYOUTS = {1: "N, C, L", 2: "N, C, H, W", 3: "N, C, D, H, W"}


@dataclass(frozen=True)
class ConvGeometry:
    """Normalised convolution arguments for one input shape (all tuples per spatial axis)."""
    in_shape: tuple          # (N, C_in, *spatial)
    w_shape: tuple           # (C_out, C_in/groups, *kernel)
    stride: tuple
    pads: tuple              # ((lo, hi), ...)
    dilation: tuple          # kernel (rhs) dilation
    groups: int
    lhs_dilation: tuple
    padded: tuple            # spatial size after zero insertion and padding
    out: tuple               # output spatial size

    @property
    def kernel(self) -> tuple:
        return self.w_shape[2:]

    @property
    def out_shape(self) -> tuple:
        return (self.in_shape[0], self.w_shape[0], *self.out)

    def with_batch(self, n: int) -> "ConvGeometry":
        """The same convolution on a batch of n samples (a chunk of this one)."""
        return ConvGeometry((n, *self.in_shape[1:]), self.w_shape, self.stride, self.pads, self.dilation,
                            self.groups, self.lhs_dilation, self.padded, self.out)


def check_groups(groups, where: str) -> int:
    return check_int(where, "groups", groups, minimum=1)


def conv_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, lhs_dilation=1,
                  where: str = "conv", allow_negative_padding: bool = False) -> ConvGeometry:
    """Validate shapes and arguments; compute padded and output sizes. Raises ValueError/TypeError."""
    n_sp = len(w_shape) - 2
    if n_sp not in LAYOUTS:
        raise ValueError(f"{where}: expected a weight of rank 3, 4 or 5 (C_out, C_in/groups, *kernel), "
                         f"got shape {tuple(w_shape)}")
    if len(x_shape) != n_sp + 2:
        raise ValueError(f"{where}: expected input of rank {n_sp + 2} ({LAYOUTS[n_sp]}), "
                         f"got shape {tuple(x_shape)} (rank {len(x_shape)})")
    groups = check_groups(groups, where)
    c_out, c_in_g = w_shape[:2]
    if c_out % groups:
        raise ValueError(f"{where}: out_channels={c_out} is not divisible by groups={groups}")
    if x_shape[1] != c_in_g * groups:
        raise ValueError(f"{where}: expected input with {c_in_g * groups} channels "
                         f"(weight {tuple(w_shape)}, groups={groups}), got shape {tuple(x_shape)}")
    stride = as_tuple(stride, n_sp, "stride", where)
    dilation = as_tuple(dilation, n_sp, "dilation", where)
    lhs = as_tuple(lhs_dilation, n_sp, "lhs_dilation", where)
    pads = resolve_padding(padding, tuple(w_shape[2:]), stride, dilation, where, allow_negative_padding)
    padded = tuple((s - 1) * d + 1 + lo + hi for s, d, (lo, hi) in zip(x_shape[2:], lhs, pads))
    for axis, (p, k, d) in enumerate(zip(padded, w_shape[2:], dilation)):
        if d * (k - 1) + 1 > p:
            raise ValueError(f"{where}: kernel (size {k}, dilation {d}, extent {d * (k - 1) + 1}) is larger than "
                             f"the padded input ({p}) along spatial axis {axis}; input shape {tuple(x_shape)}, "
                             f"padding {pads[axis]}")
    out = tuple(out_size(p, k, s, 0, 0, d) for p, k, s, d in zip(padded, w_shape[2:], stride, dilation))
    return ConvGeometry(tuple(x_shape), tuple(w_shape), stride, pads, dilation, groups, lhs, padded, out)


def conv_output_shape(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1) -> tuple:
    """The output shape of conv(x, w) with these arguments, as torch computes it:
    (N, C_in, *S) and (C_out, C_in/groups, *k) -> (N, C_out, *out), validated like the convolution."""
    return conv_geometry(check_shape("conv_output_shape", "input_shape", input_shape),
                         check_shape("conv_output_shape", "weight_shape", weight_shape), stride, padding, dilation,
                         groups, where="conv_output_shape").out_shape


def flip_swap(w: np.ndarray, groups: int) -> np.ndarray:
    """rot180 of every kernel with in/out channels swapped per group (the lectures' W-dagger):
    (C_out, C_in/g, *k) -> (C_in, C_out/g, *k)."""
    check_float_array(w, "flip_swap", "weight")
    if w.ndim < 3:
        raise ValueError(f"flip_swap: expected a weight of rank 3 or more (C_out, C_in/groups, *kernel), "
                         f"got shape {w.shape}")
    c_out, c_in_g, *k = w.shape
    g = check_groups(groups, "flip_swap")
    if c_out % g:
        raise ValueError(f"flip_swap: out_channels={c_out} is not divisible by groups={g}")
    flipped = w[(slice(None), slice(None), *(slice(None, None, -1),) * len(k))]
    return (flipped.reshape(g, c_out // g, c_in_g, *k).swapaxes(1, 2).reshape(g * c_in_g, c_out // g, *k))


def gradient_geometry(dy, w_or_x, shape, which: str, stride, padding, dilation, groups, where) -> ConvGeometry:
    """The checks of the stand-alone gradient functions (conv_input_grad(dy, w, x_shape),
    conv_weight_grad(x, dy, w_shape) and the lectures' versions): float arrays of one dtype,
    `shape` the input's (which="input") or the weight's (which="weight") shape, dy of the
    convolution's output shape. -> the convolution's geometry."""
    check_float_array(dy, where, "dy")
    check_float_array(w_or_x, where, "weight" if which == "input" else "input")
    check_same_dtype(dy, w_or_x, where, "dy", "weight" if which == "input" else "input")
    shape = check_shape(where, "x_shape" if which == "input" else "w_shape", shape)
    x_shape, w_shape = (shape, w_or_x.shape) if which == "input" else (w_or_x.shape, shape)
    geo = conv_geometry(x_shape, w_shape, stride, padding, dilation, groups, where=where)
    if dy.shape != geo.out_shape:
        raise ValueError(f"{where}: expected dy of shape {geo.out_shape} (the convolution's output), got {dy.shape}")
    return geo


def check_inputs(x, w, b, where, bias_size=None):
    """Float arrays of one dtype; b (bias_size,) or None (bias_size defaults to C_out)."""
    check_float_array(x, where, "input")
    check_float_array(w, where, "weight")
    check_same_dtype(x, w, where, "input", "weight")
    if b is not None:
        check_float_array(b, where, "bias")
        check_same_dtype(x, b, where, "input", "bias")
        size = w.shape[0] if bias_size is None else bias_size
        if b.shape != (size,):
            raise ValueError(f"{where}: expected bias of shape ({size},), got {b.shape}")
