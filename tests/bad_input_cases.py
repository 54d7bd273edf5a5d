"""The bad-input catalogue as data: every case a zero-argument callable, the exception type it
must raise and regular expressions its message must contain (what was wrong, where).

Cases are generated from tables — layer x argument x bad value, layer x bad input, layer x
bad gradient, functional op x bad argument, optimiser/scheduler x option x bad value — so
adding a layer or an argument to a table adds its whole row of cases. Used by
tests/test_bad_inputs.py (layers, functional ops, optimisers) and tests/test_bad_inputs_files.py
(data readers, checkpoints, tools).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from convgrad import nn
from convgrad import functional as F
from convgrad import optim

NAN, INF = float("nan"), float("inf")


@dataclass
class Case:
    id: str
    fn: Callable[[], object]
    exc: type
    names: tuple = ()                  # regexes the message must contain
    owner: str = "mine"                # "engine": the layer/op lives in the engine helper's files
    tags: tuple = field(default_factory=tuple)


# ---------------------------------------------------------------------------------------
# bad values by the kind of argument they are given to (value label, value, exception)
# ---------------------------------------------------------------------------------------
_REAL_TYPE = [("str", "0.1", TypeError), ("none", None, TypeError), ("bool", True, TypeError),
              ("list", [0.1], TypeError), ("complex", 1j, TypeError), ("array", np.array([0.1, 0.2]), TypeError),
              ("nan", NAN, ValueError), ("inf", INF, ValueError), ("ninf", -INF, ValueError)]
_INT_TYPE = [("str", "3", TypeError), ("float", 2.5, TypeError), ("bool", True, TypeError),
             ("none", None, TypeError), ("nan", NAN, TypeError), ("complex", 1j, TypeError),
             ("list1", [3, 3, 3, 3, 3, 3, 3], TypeError)]

BAD = {
    "pos_int": _INT_TYPE + [("zero", 0, ValueError), ("neg", -1, ValueError), ("np_zero", np.int64(0), ValueError)],
    "nonneg_int": _INT_TYPE + [("neg", -1, ValueError), ("big_neg", -10 ** 12, ValueError)],
    "int": [v for v in _INT_TYPE if v[0] != "list1"] + [("list", [1], TypeError)],
    "int_or_none": [v for v in _INT_TYPE if v[0] not in ("none", "list1")] + [("list", [1], TypeError)],
    "real": _REAL_TYPE,
    "nonzero_real": _REAL_TYPE + [("zero", 0.0, ValueError)],
    "nonneg_real": _REAL_TYPE + [("neg", -1.0, ValueError), ("tiny_neg", -1e-300, ValueError)],
    "pos_real": _REAL_TYPE + [("zero", 0.0, ValueError), ("neg", -1.0, ValueError)],
    "unit_real": _REAL_TYPE + [("neg", -0.1, ValueError), ("above", 1.5, ValueError)],
    "unit_real_or_none": [v for v in _REAL_TYPE if v[0] != "none"] + [("neg", -0.1, ValueError),
                                                                      ("above", 1.5, ValueError)],
    "bool": [("str", "yes", TypeError), ("int2", 2, TypeError), ("none", None, TypeError), ("float", 1.0, TypeError),
             ("list", [True], TypeError)],
    "choice": [("bogus", "bogus", ValueError), ("int", 1, ValueError), ("none", None, ValueError),
               ("empty", "", ValueError), ("list", ["a"], ValueError)],
    "dtype": [("int64", np.int64, TypeError), ("float16", "float16", TypeError), ("bogus", "bogus", TypeError),
              ("complex", np.complex128, TypeError)],
    "generator": [("neg", -1, ValueError), ("str", "seed", TypeError), ("float", 1.5, TypeError),
                  ("legacy", np.random.RandomState(0), TypeError)],
}


def _size_bad(n: int):
    """int-or-n-tuple sizes >= 1 (kernel_size, stride, dilation)."""
    return [v for v in BAD["pos_int"] if v[0] != "list1"] + [
        ("zero_in_tuple", (0,) + (1,) * (n - 1), ValueError), ("neg_in_tuple", (1,) * (n - 1) + (-2,), ValueError),
        ("float_in_tuple", (1.5,) * n, TypeError), ("wrong_len", (2,) * (n + 1), TypeError)]


def _conv_pad_bad(n: int):
    """A convolution's padding: sizes >= 0, or 'same'/'valid' (any other string is a ValueError, as torch)."""
    return [v if v[0] != "str" else ("str", "3", ValueError) for v in _pad_bad(n)] + [("bogus_str", "full", ValueError)]


def _stride_bad(n: int):
    """A pooling stride: as _size_bad, but None is valid (the kernel size, as torch)."""
    return [v for v in _size_bad(n) if v[0] != "none"]


def _pad_bad(n: int):
    """int-or-n-tuple sizes >= 0 (padding, output_padding)."""
    return [v for v in BAD["nonneg_int"] if v[0] != "list1"] + [
        ("neg_in_tuple", (0,) * (n - 1) + (-1,), ValueError), ("float_in_tuple", (0.5,) * n, TypeError),
        ("wrong_len", (1,) * (n + 1), TypeError)]


# ---------------------------------------------------------------------------------------
# layers: how to build one, its arguments' kinds, a valid input
# ---------------------------------------------------------------------------------------
@dataclass
class LayerSpec:
    cls: type
    base: dict                          # a valid set of keyword arguments
    args: dict                          # argument -> kind (a key of BAD) or a list of bad values
    x_shape: tuple | None               # a valid float32 input (None: not a one-input layer)
    owner: str = "mine"
    fixed_rank: bool = True             # a wrong-rank input is an error
    channels: int | None = None         # the channel count checked at dim 1
    ranks: tuple | None = None          # the accepted input ranks (default: x_shape's)
    bad_shapes: tuple = ()              # further (label, shape, regex) inputs of a wrong shape
    variant: str = ""                   # distinguishes two specs of one class in the case ids

    @property
    def key(self) -> str:
        return self.name + self.variant
    has_params: bool = False            # a float64 input into float32 parameters is an error

    @property
    def name(self) -> str:
        return self.cls.__name__


def _conv_specs():
    specs = []
    for n, cls, tcls in ((1, nn.Conv1d, nn.ConvTranspose1d), (2, nn.Conv2d, nn.ConvTranspose2d),
                         (3, nn.Conv3d, nn.ConvTranspose3d)):
        common = {"in_channels": "pos_int", "out_channels": "pos_int", "kernel_size": _size_bad(n),
                  "stride": _size_bad(n), "dilation": _size_bad(n), "groups": "pos_int", "bias": "bool",
                  "generator": "generator", "dtype": "dtype"}
        specs.append(LayerSpec(cls, dict(in_channels=2, out_channels=4, kernel_size=3),
                               {**common, "padding": _conv_pad_bad(n),
                                "padding_mode": "choice"},
                               (2, 2) + (6,) * n, "engine", channels=2, has_params=True))
        for mode in ("reflect", "replicate", "circular"):
            specs.append(LayerSpec(cls, dict(in_channels=2, out_channels=4, kernel_size=3, padding=1, padding_mode=mode),
                                   {"padding": [("neg", -1, ValueError), ("str", "full", ValueError)]},
                                   (2, 2) + (6,) * n, "engine", channels=2, has_params=True, variant=f"[{mode}]"))
        specs.append(LayerSpec(tcls, dict(in_channels=2, out_channels=4, kernel_size=3),
                               {**common, "padding": _pad_bad(n), "output_padding": _pad_bad(n)},
                               (2, 2) + (5,) * n, "engine", channels=2, has_params=True))
    return specs


def _pool_specs():
    specs = []
    for n in (1, 2, 3):
        mx, av = getattr(nn, f"MaxPool{n}d"), getattr(nn, f"AvgPool{n}d")
        amx, aav = getattr(nn, f"AdaptiveMaxPool{n}d"), getattr(nn, f"AdaptiveAvgPool{n}d")
        x = (2, 3) + (6,) * n
        specs += [
            LayerSpec(mx, dict(kernel_size=2), {"kernel_size": _size_bad(n), "stride": _stride_bad(n),
                                               "padding": _pad_bad(n), "dilation": _size_bad(n),
                                               "return_indices": "bool", "ceil_mode": "bool"}, x, "engine"),
            LayerSpec(av, dict(kernel_size=2), {"kernel_size": _size_bad(n), "stride": _stride_bad(n),
                                               "padding": _pad_bad(n), "ceil_mode": "bool",
                                               "count_include_pad": "bool"}, x, "engine"),
            LayerSpec(aav, dict(output_size=2), {"output_size": _size_bad(n)}, x, "engine"),
            LayerSpec(amx, dict(output_size=2), {"output_size": _size_bad(n), "return_indices": "bool"}, x, "engine"),
            LayerSpec(getattr(nn, f"MaxUnpool{n}d"), dict(kernel_size=2),
                      {"kernel_size": _size_bad(n), "stride": _stride_bad(n), "padding": _pad_bad(n)}, None, "engine"),
        ]
    return specs


def _padding_specs():
    """The padding layers (torch's flat padding: an int or 2 * n ints); ConstantPad's value
    may be NaN or inf (a fill value), never a string."""
    specs = []
    for n in (1, 2, 3):
        for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular"):
            cls = getattr(nn, f"{kind}Pad{n}d")
            args = {"padding": _pad_bad(2 * n)}
            base = dict(padding=1)
            if kind == "Constant":
                base["value"] = 0.5
                args["value"] = [("str", "a", TypeError), ("none", None, TypeError), ("list", [1.0], TypeError),
                                 ("complex", 1j, TypeError), ("bool", True, TypeError)]
            specs.append(LayerSpec(cls, base, args, (2, 3) + (4,) * n, ranks=(n + 1, n + 2)))
    return specs


_ANY = (2, 3, 4)
LAYERS = [
    LayerSpec(nn.ReLU, {}, {"inplace": "bool"}, _ANY, fixed_rank=False),
    LayerSpec(nn.SiLU, {}, {"inplace": "bool"}, _ANY, fixed_rank=False),
    LayerSpec(nn.Sigmoid, {}, {}, _ANY, fixed_rank=False),
    LayerSpec(nn.Tanh, {}, {}, _ANY, fixed_rank=False),
    LayerSpec(nn.LeakyReLU, {}, {"negative_slope": "real", "inplace": "bool"}, _ANY, fixed_rank=False),
    LayerSpec(nn.ELU, {}, {"alpha": "real", "inplace": "bool"}, _ANY, fixed_rank=False),
    LayerSpec(nn.GELU, {}, {"approximate": "choice"}, _ANY, fixed_rank=False),
    LayerSpec(nn.Softplus, {}, {"beta": "nonzero_real", "threshold": "real"}, _ANY, fixed_rank=False),
    LayerSpec(nn.Softmax, {"dim": 1}, {"dim": "int_or_none"}, _ANY, fixed_rank=False,
              bad_shapes=(("rank1", (3,), "dim"),)),
    LayerSpec(nn.LogSoftmax, {"dim": 1}, {"dim": "int_or_none"}, _ANY, fixed_rank=False,
              bad_shapes=(("rank1", (3,), "dim"),)),
    LayerSpec(nn.Linear, dict(in_features=4, out_features=3),
              {"in_features": "nonneg_int", "out_features": "nonneg_int", "bias": "bool", "generator": "generator",
               "dtype": "dtype"}, (2, 4), fixed_rank=False, has_params=True,
              bad_shapes=(("in_features", (2, 5), "in_features|4"), ("scalar", (), "in_features|shape"),
                          ("transposed", (4, 2), "in_features"), ("empty_features", (2, 0), "in_features"))),
    LayerSpec(nn.Dropout, {}, {"p": "unit_real", "inplace": "bool", "generator": "generator"}, _ANY,
              fixed_rank=False),
    LayerSpec(nn.Dropout2d, {}, {"p": "unit_real", "inplace": "bool", "generator": "generator"}, (2, 3, 4, 4),
              ranks=(3, 4)),
    *[LayerSpec(cls, dict(num_features=3),
                {"num_features": "pos_int", "eps": "nonneg_real", "momentum": "unit_real_or_none", "affine": "bool",
                 "track_running_stats": "bool", "dtype": "dtype"}, shape, channels=3, has_params=True, ranks=ranks)
      for cls, shape, ranks in ((nn.BatchNorm1d, (4, 3, 5), (2, 3)), (nn.BatchNorm2d, (4, 3, 5, 5), (4,)),
                                (nn.BatchNorm3d, (2, 3, 3, 3, 3), (5,)))],
    LayerSpec(nn.LayerNorm, dict(normalized_shape=4),
              {"normalized_shape": [v for v in BAD["pos_int"] if v[0] != "list1"] + [
                  ("empty", (), ValueError), ("float_array", np.array([4.0]), TypeError),
                  ("matrix_array", np.array([[4]]), TypeError), ("zero_array", np.array([0]), ValueError)],
               "eps": "nonneg_real", "elementwise_affine": "bool", "bias": "bool", "dtype": "dtype"},
              (3, 4), fixed_rank=False, has_params=True,
              bad_shapes=(("trailing", (3, 5), "normalized_shape|shape"), ("vector_short", (3,), "shape"),
                          ("scalar", (), "shape"))),
    LayerSpec(nn.GroupNorm, dict(num_groups=2, num_channels=4),
              {"num_groups": "pos_int", "num_channels": "pos_int", "eps": "nonneg_real", "affine": "bool",
               "dtype": "dtype"}, (2, 4, 3), fixed_rank=False, channels=4, has_params=True,
              bad_shapes=(("rank1", (4,), "shape"), ("scalar", (), "shape"))),
    LayerSpec(nn.Upsample, dict(scale_factor=2),
              {"scale_factor": [v for v in BAD["pos_int"] if v[0] not in ("list1", "float")]
               + [("fraction", 1.5, TypeError), ("zero_in_tuple", (2, 0), ValueError)], "mode": "choice"},
              (2, 3, 4, 4), ranks=(3, 4, 5)),
    LayerSpec(nn.Downsample, dict(factor=2),
              {"factor": [v for v in BAD["pos_int"] if v[0] not in ("list1", "float")]
               + [("fraction", 1.5, TypeError)]}, (2, 3, 4, 4), ranks=(3, 4, 5)),
    LayerSpec(nn.Flatten, {}, {"start_dim": "int", "end_dim": "int"}, (2, 3, 4), fixed_rank=False,
              bad_shapes=(("rank1", (3,), "start_dim|range"),)),
    LayerSpec(nn.Unflatten, dict(dim=1, unflattened_size=(3, 4)),
              {"dim": "int", "unflattened_size": [("str", "34", TypeError), ("float", (3.0, 4.0), TypeError),
                                                  ("two_minus_one", (-1, -1), ValueError),
                                                  ("neg", (-3, 4), ValueError)]},
              (2, 12), fixed_rank=False,
              bad_shapes=(("not_divisible", (2, 13), "13"), ("scalar", (), "scalar|rank"))),
    *_conv_specs(),
    *_pool_specs(),
    *_padding_specs(),
]


def _kind_values(kind, spec: LayerSpec | None = None, arg: str | None = None):
    values = BAD[kind] if isinstance(kind, str) else kind
    return values


def constructor_cases() -> list[Case]:
    cases = []
    for spec in LAYERS:
        for arg, kind in spec.args.items():
            for label, value, exc in _kind_values(kind):
                kwargs = {**spec.base, arg: value}
                cases.append(Case(f"ctor-{spec.key}-{arg}-{label}", lambda c=spec.cls, k=kwargs: c(**k), exc,
                                  (re.escape(spec.name), re.escape(arg.split("[")[0])), spec.owner, ("ctor",)))
    return cases


# ---------------------------------------------------------------------------------------
# forward: bad inputs into a valid layer
# ---------------------------------------------------------------------------------------
def _x(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _bad_inputs(spec: LayerSpec):
    x = _x(spec.x_shape)
    out = [("list", lambda: x.tolist(), TypeError, "ndarray"),
           ("none", lambda: None, TypeError, "ndarray"),
           ("int64", lambda: x.astype(np.int64), TypeError, "dtype"),
           ("int8", lambda: x.astype(np.int8), TypeError, "dtype"),
           ("bool", lambda: x > 0, TypeError, "dtype"),
           ("complex", lambda: x.astype(np.complex64), TypeError, "dtype"),
           ("float16", lambda: x.astype(np.float16), TypeError, "dtype"),
           ("object", lambda: x.astype(object), TypeError, "dtype"),
           ("str_array", lambda: x.astype(str), TypeError, "dtype")]
    if spec.fixed_rank:
        ranks = spec.ranks or (len(spec.x_shape),)
        low, high = min(ranks) - 1, max(ranks) + 1
        out += [("rank_below", lambda: _x(spec.x_shape[:low]), ValueError, "shape|rank"),
                ("rank_above", lambda: _x(spec.x_shape + (2,) * (high - len(spec.x_shape))), ValueError, "shape|rank")]
        if low > 0:
            out.append(("scalar", lambda: np.ones((), np.float32), ValueError, "shape|rank"))
    if spec.channels is not None:
        out.append(("channels", lambda: _x((x.shape[0], spec.channels + 1, *x.shape[2:])), ValueError, "channels|shape"))
    if spec.has_params:
        out.append(("float64_vs_float32", lambda: x.astype(np.float64), TypeError, "dtype"))
    for label, shape, what in spec.bad_shapes:
        out.append((label, lambda shape=shape: _x(shape), ValueError, what))
    return out


def forward_cases() -> list[Case]:
    cases = []
    for spec in LAYERS:
        if spec.x_shape is None:
            continue
        for label, make_x, exc, what in _bad_inputs(spec):
            def run(spec=spec, make_x=make_x):
                layer = spec.cls(**spec.base)
                return layer(make_x())
            cases.append(Case(f"forward-{spec.key}-{label}", run, exc, (re.escape(spec.name), what), spec.owner,
                              ("forward",)))
        # arguments forward does not take: named by the layer (not by its base class's forward)
        for label, call in (("extra_positional", lambda m, x: m(x, x)), ("unknown_keyword", lambda m, x: m(x, foo=1)),
                            ("no_argument", lambda m, x: m())):
            names = (rf"^{re.escape(spec.name)}: forward", "cannot take")
            if label == "extra_positional" and spec.name.startswith("ConvTranspose"):
                names = (rf"^{re.escape(spec.name)}: output_size", "ndarray")     # forward(x, output_size), as torch
            cases.append(Case(f"forward-{spec.key}-{label}",
                              lambda spec=spec, call=call: call(spec.cls(**spec.base), _x(spec.x_shape)), TypeError,
                              names, spec.owner, ("forward",)))
    return cases


# ---------------------------------------------------------------------------------------
# backward: bad gradients after a valid forward
# ---------------------------------------------------------------------------------------
def _forwarded(spec: LayerSpec):
    layer = spec.cls(**spec.base)
    y = layer(_x(spec.x_shape))
    return layer, (y[0] if isinstance(y, tuple) else y)


_BAD_GRADS = [
    ("shape_short", lambda y: np.zeros(y.shape[:-1] + (y.shape[-1] + 1,), y.dtype), ValueError),
    ("shape_extra_axis", lambda y: np.zeros((1, *y.shape), y.dtype), ValueError),
    ("shape_scalar", lambda y: np.zeros((), y.dtype), ValueError),
    ("transposed", lambda y: np.zeros(y.shape[::-1] if y.shape != y.shape[::-1] else (1, *y.shape), y.dtype),
     ValueError),
    ("int64", lambda y: np.zeros(y.shape, np.int64), TypeError),
    ("bool", lambda y: np.zeros(y.shape, bool), TypeError),
    ("complex", lambda y: np.zeros(y.shape, np.complex128), TypeError),
    ("float16", lambda y: np.zeros(y.shape, np.float16), TypeError),
    ("object", lambda y: np.zeros(y.shape, object), TypeError),
    ("list", lambda y: np.zeros(y.shape, y.dtype).tolist(), TypeError),
    ("none", lambda y: None, TypeError),
    ("python_float", lambda y: 1.0, TypeError),
]


def backward_cases() -> list[Case]:
    cases = []
    for spec in LAYERS:
        if spec.x_shape is None:
            continue
        for label, make_g, exc in _BAD_GRADS:
            def run(spec=spec, make_g=make_g):
                layer, y = _forwarded(spec)
                return layer.backward(make_g(y))
            cases.append(Case(f"backward-{spec.key}-{label}", run, exc,
                              (re.escape(spec.name), "grad_output|gradient"), spec.owner, ("backward",)))

        def before(spec=spec):
            layer = spec.cls(**spec.base)
            return layer.backward(np.zeros(spec.x_shape, np.float32))
        cases.append(Case(f"backward-{spec.key}-before_forward", before, RuntimeError,
                          (re.escape(spec.name), "before forward"), spec.owner, ("backward",)))
    return cases


# ---------------------------------------------------------------------------------------
# losses: bad predictions, targets and upstream gradients
# ---------------------------------------------------------------------------------------
_P = _x((4, 3))
_CLS = np.array([0, 2, 1, 0])
LOSSES = {
    "CrossEntropyLoss": (nn.CrossEntropyLoss, _CLS, {"weight": [("str", "abc", TypeError), ("bool", [True, False, True], TypeError),
                                                                ("matrix", np.ones((3, 3)), ValueError),
                                                                ("ragged", [[1.0], [1.0, 2.0]], TypeError),
                                                                ("complex", np.ones(3, complex), TypeError)],
                                                     "reduction": "choice", "ignore_index": "int",
                                                     "label_smoothing": "unit_real"}),
    "NLLLoss": (nn.NLLLoss, _CLS, {"weight": [("str", "abc", TypeError), ("matrix", np.ones((3, 3)), ValueError)],
                                   "reduction": "choice", "ignore_index": "int"}),
    "MSELoss": (nn.MSELoss, _x((4, 3), seed=1), {"reduction": "choice"}),
    "L1Loss": (nn.L1Loss, _x((4, 3), seed=1), {"reduction": "choice"}),
    "BCEWithLogitsLoss": (nn.BCEWithLogitsLoss, (_x((4, 3), seed=1) > 0).astype(np.float32),
                          {"reduction": "choice", "weight": [("str", "abc", TypeError)],
                           "pos_weight": [("str", "abc", TypeError), ("bool", np.ones(3, bool), TypeError)]}),
}


def loss_cases() -> list[Case]:
    cases = []
    for name, (cls, target, args) in LOSSES.items():
        for arg, kind in args.items():
            for label, value, exc in _kind_values(kind):
                cases.append(Case(f"ctor-{name}-{arg}-{label}", lambda c=cls, a=arg, v=value: c(**{a: v}), exc,
                                  (name, arg), "mine", ("ctor",)))
        classes = target.dtype.kind == "i"
        bad_pred = [("list", lambda: _P.tolist(), TypeError), ("int64", lambda: _P.astype(np.int64), TypeError),
                    ("complex", lambda: _P.astype(complex), TypeError), ("none", lambda: None, TypeError)]
        bad_target = [("none", lambda: None, TypeError), ("str", lambda: "abc", TypeError),
                      ("ragged", lambda: [[0], [1, 2]], TypeError), ("complex", lambda: target.astype(complex), TypeError)]
        if classes:
            bad_pred += [("scalar", lambda: np.ones((), np.float32), ValueError)]
            bad_target += [("float", lambda: _x((4,)), ValueError if name == "CrossEntropyLoss" else TypeError),
                           ("out_of_range", lambda: np.array([0, 3, 1, 0]), ValueError),
                           ("negative", lambda: np.array([0, -2, 1, 0]), ValueError),
                           ("wrong_shape", lambda: np.array([0, 1, 1]), ValueError),
                           ("huge", lambda: np.array([0, 2 ** 62, 1, 0]), ValueError)]
        else:
            bad_target += [("int", lambda: target.astype(np.int64), TypeError),
                           ("wrong_shape", lambda: target[:, :2], ValueError),
                           ("transposed", lambda: target.T.copy(), ValueError)]
        for label, make, exc in bad_pred:
            cases.append(Case(f"forward-{name}-pred-{label}", lambda c=cls, m=make, t=target: c()(m(), t), exc,
                              (name,), "mine", ("forward",)))
        for label, make, exc in bad_target:
            cases.append(Case(f"forward-{name}-target-{label}", lambda c=cls, m=make: c()(_P, m()), exc,
                              (name, "target"), "mine", ("forward",)))
        for reduction, label, grad, exc in (("mean", "str", "abc", TypeError), ("mean", "vector", np.ones(4), ValueError),
                                            ("mean", "object", np.array([object()]), TypeError),
                                            ("sum", "list", [1.0, 2.0], ValueError),
                                            ("none", "scalar", 1.0, ValueError), ("none", "wrong_shape", np.ones(3), ValueError),
                                            ("none", "str_array", np.array(["a"] * 4), TypeError)):
            def run(cls=cls, reduction=reduction, grad=grad, target=target):
                loss = cls(reduction=reduction)
                loss(_P, target)
                return loss.backward(grad)
            cases.append(Case(f"backward-{name}-{reduction}-{label}", run, exc, (name, "backward"), "mine",
                              ("backward",)))
        cases.append(Case(f"backward-{name}-before_forward", lambda c=cls: c().backward(), RuntimeError,
                          (name, "before forward"), "mine", ("backward",)))
    return cases


# ---------------------------------------------------------------------------------------
# functional ops: bad arguments
# ---------------------------------------------------------------------------------------
_X4 = _x((2, 3, 6, 6))
_W4 = _x((4, 3, 3, 3))


_GRAD_BAD = [("list", [[1.0]], TypeError), ("none", None, TypeError), ("int", np.ones((2, 3, 4, 4), int), TypeError),
             ("complex", np.ones((2, 3, 4, 4), complex), TypeError)]
_DY_BAD = _GRAD_BAD + [("float64", _x((2, 4, 4, 4), np.float64), TypeError), ("wrong_shape", _x((2, 4, 4, 5)), ValueError)]
_SHAPE_BAD = [("int", 3, TypeError), ("none", None, TypeError), ("str", "abc", TypeError),
              ("float_in_tuple", (2.0, 3, 4, 6), TypeError), ("negative", (2, 3, -4, 6), TypeError)]
_PADS_BAD = [("int", 1, TypeError), ("odd", (1, 2, 3), ValueError), ("mixed", ((1, 2), 3), TypeError),
             ("float", (1.5, 2), TypeError), ("str", "ab", TypeError), ("too_many", ((1, 1),) * 5, ValueError)]


def functional_cases() -> list[Case]:
    ops = {  # name -> (callable(value), argument kind or list, owner, regexes)
        "leaky_relu.negative_slope": (lambda v: F.leaky_relu(_X4, v), "real", "mine", ("leaky_relu", "negative_slope")),
        "elu.alpha": (lambda v: F.elu(_X4, v), "real", "mine", ("elu", "alpha")),
        "softplus.beta": (lambda v: F.softplus(_X4, v), "nonzero_real", "mine", ("softplus", "beta")),
        "softplus.threshold": (lambda v: F.softplus(_X4, 1.0, v), "real", "mine", ("softplus", "threshold")),
        "gelu.approximate": (lambda v: F.gelu(_X4, v), "choice", "mine", ("gelu", "approximate")),
        "softmax.dim": (lambda v: F.softmax(_X4, v), [v for v in BAD["int_or_none"]] + [("out_of_range", 4, ValueError),
                                                                                       ("neg_out_of_range", -5, ValueError)],
                        "mine", ("softmax", "dim")),
        "log_softmax.dim": (lambda v: F.log_softmax(_X4, v), [v for v in BAD["int_or_none"]]
                            + [("out_of_range", 4, ValueError)], "mine", ("log_softmax", "dim")),
        "dropout.p": (lambda v: F.dropout(_X4, v), "unit_real", "mine", ("dropout", "p")),
        "dropout2d.p": (lambda v: F.dropout2d(_X4, v), "unit_real", "mine", ("dropout2d", "p")),
        "dropout.generator": (lambda v: F.dropout(_X4, 0.5, True, v), "generator", "mine", ("generator",)),
        "layer_norm.eps": (lambda v: F.layer_norm(_X4, (6,), eps=v), "nonneg_real", "mine", ("layer_norm", "eps")),
        "group_norm.eps": (lambda v: F.group_norm(_X4, 3, eps=v), "nonneg_real", "mine", ("group_norm", "eps")),
        "group_norm.num_groups": (lambda v: F.group_norm(_X4, v), [("zero", 0, ValueError), ("two", 2, ValueError),
                                                                   ("str", "3", ValueError)], "mine",
                                  ("group_norm", "num_groups")),
        "batch_norm.eps": (lambda v: F.batch_norm(_X4, training=True, eps=v), "nonneg_real", "mine",
                           ("batch_norm", "eps")),
        "batch_norm.momentum": (lambda v: F.batch_norm(_X4, np.zeros(3, np.float32), np.ones(3, np.float32),
                                                       training=True, momentum=v), "unit_real", "mine",
                                ("batch_norm", "momentum")),
        "layer_norm.normalized_shape": (lambda v: F.layer_norm(_X4, v), [("zero", 0, ValueError), ("neg", -6, ValueError),
                                                                         ("wrong", (5,), ValueError),
                                                                         ("str", "6", TypeError),
                                                                         ("float_in_tuple", (6.0,), TypeError)], "mine",
                                        ("layer_norm", "normalized_shape")),
        "linear.weight": (lambda v: F.linear(_x((2, 4)), v), [("vector", _x((4,)), ValueError),
                                                             ("wrong_in", _x((3, 5)), ValueError),
                                                             ("float64", _x((3, 4), np.float64), TypeError),
                                                             ("list", [[1.0] * 4], TypeError),
                                                             ("int", np.ones((3, 4), int), TypeError)], "mine",
                          ("linear", "weight|in_features")),
        "linear.bias": (lambda v: F.linear(_x((2, 4)), _x((3, 4)), v), [("wrong", _x((4,)), ValueError),
                                                                       ("matrix", _x((1, 3)), ValueError),
                                                                       ("float64", _x((3,), np.float64), TypeError),
                                                                       ("list", [0.0] * 3, TypeError)], "mine",
                        ("linear", "bias")),
        "cross_entropy.label_smoothing": (lambda v: F.cross_entropy(_P, _CLS, label_smoothing=v), "unit_real", "mine",
                                          ("cross_entropy", "label_smoothing")),
        "cross_entropy.ignore_index": (lambda v: F.cross_entropy(_P, _CLS, ignore_index=v), "int", "mine",
                                       ("cross_entropy", "ignore_index")),
        "cross_entropy.reduction": (lambda v: F.cross_entropy(_P, _CLS, reduction=v), "choice", "mine",
                                    ("cross_entropy", "reduction")),
        "nll_loss.ignore_index": (lambda v: F.nll_loss(_P, _CLS, ignore_index=v), "int", "mine", ("nll_loss", "ignore_index")),
        "mse_loss.reduction": (lambda v: F.mse_loss(_P, _P, reduction=v), "choice", "mine", ("mse_loss", "reduction")),
        # engine ops
        "conv2d.stride": (lambda v: F.conv2d(_X4, _W4, stride=v), _size_bad(2), "engine", ("stride",)),
        "conv2d.padding": (lambda v: F.conv2d(_X4, _W4, padding=v), _conv_pad_bad(2), "engine", ("padding",)),
        "conv2d.dilation": (lambda v: F.conv2d(_X4, _W4, dilation=v), _size_bad(2), "engine", ("dilation",)),
        "conv2d.groups": (lambda v: F.conv2d(_X4, _W4, groups=v), BAD["pos_int"][:-1] + [("not_dividing", 2, ValueError)],
                          "engine", ("groups",)),
        "conv2d.weight": (lambda v: F.conv2d(_X4, v), [("rank3", _x((4, 3, 3)), ValueError), ("channels", _x((4, 2, 3, 3)), ValueError),
                                                      ("int", np.ones((4, 3, 3, 3), int), TypeError),
                                                      ("float64", _x((4, 3, 3, 3), np.float64), TypeError),
                                                      ("too_big", _x((4, 3, 9, 9)), ValueError)], "engine",
                          ("weight|kernel|channels",)),
        "max_pool2d.kernel_size": (lambda v: F.max_pool2d(_X4, v), _size_bad(2), "engine", ("kernel_size",)),
        "avg_pool2d.kernel_size": (lambda v: F.avg_pool2d(_X4, v), _size_bad(2), "engine", ("kernel_size",)),
        "adaptive_avg_pool2d.output_size": (lambda v: F.adaptive_avg_pool2d(_X4, v), _size_bad(2), "engine",
                                            ("output_size",)),
        "upsample_nearest.factor": (lambda v: F.upsample_nearest(_X4, v), [v for v in BAD["pos_int"] if v[0] != "list1"],
                                    "engine", ("factor",)),
        # the stand-alone gradient functions and helpers: arrays, shapes and pads checked, each error naming the op
        "pad.pads": (lambda v: F.pad(_X4, v), _PADS_BAD, "mine", (r"pad: expected pads",)),
        "pad_backward.grad": (lambda v: F.pad_backward(v, ((1, 1),), "zeros", _X4.shape), _GRAD_BAD + [
            ("wrong_shape", _x((2, 3, 4, 6)), ValueError)], "mine", ("pad_backward",)),
        "pad_backward.pads": (lambda v: F.pad_backward(_x((2, 3, 4, 8)), v, "zeros", _X4.shape), _PADS_BAD, "mine",
                              ("pad_backward", "pads")),
        "pad_backward.mode": (lambda v: F.pad_backward(_x((2, 3, 4, 8)), ((1, 1),), v, _X4.shape), "choice", "mine",
                              ("pad_backward", "mode")),
        "pad_backward.x_shape": (lambda v: F.pad_backward(_x((2, 3, 4, 8)), ((1, 1),), "zeros", v), _SHAPE_BAD,
                                 "mine", ("pad_backward", "x_shape")),
        "conv_input_grad.dy": (lambda v: F.conv_input_grad(v, _W4, _X4.shape), _DY_BAD, "engine",
                               ("conv_input_grad", "dy")),
        "conv_input_grad.x_shape": (lambda v: F.conv_input_grad(_x((2, 4, 2, 4)), _W4, v), _SHAPE_BAD, "engine",
                                    ("conv_input_grad", "x_shape|input")),
        "conv_input_grad_by_conv.dy": (lambda v: F.conv_input_grad_by_conv(v, _W4, _X4.shape), _DY_BAD, "engine",
                                       ("conv_input_grad_by_conv", "dy")),
        "conv_weight_grad.dy": (lambda v: F.conv_weight_grad(_X4, v, _W4.shape), _DY_BAD, "engine",
                                ("conv_weight_grad", "dy")),
        "conv_weight_grad.w_shape": (lambda v: F.conv_weight_grad(_X4, _x((2, 4, 2, 4)), v), _SHAPE_BAD, "engine",
                                     ("conv_weight_grad", "w_shape|weight")),
        "conv_weight_grad_by_conv.dy": (lambda v: F.conv_weight_grad_by_conv(_X4, v, _W4.shape), _DY_BAD,
                                        "engine", ("conv_weight_grad_by_conv", "dy")),
        "conv_output_shape.input_shape": (lambda v: F.conv_output_shape(v, _W4.shape), _SHAPE_BAD, "engine",
                                          ("conv_output_shape", "input")),
        "flip_swap.weight": (lambda v: F.flip_swap(v, 1), _GRAD_BAD[:4] + [("vector", _x((3,)), ValueError)], "engine",
                             ("flip_swap", "weight")),
        "flip_swap.groups": (lambda v: F.flip_swap(_W4, v), BAD["pos_int"][:-1] + [("not_dividing", 3, ValueError)],
                             "engine", ("flip_swap", "groups")),
        "downsample_backward.grad": (lambda v: F.downsample_backward(v, 2, (4, 6)), _GRAD_BAD + [
            ("wrong_shape", _x((2, 3, 3, 3)), ValueError)], "engine", ("downsample_backward",)),
        "downsample_backward.in_spatial": (lambda v: F.downsample_backward(_x((2, 3, 2, 3)), 2, v), _SHAPE_BAD
                                           + [("mismatch", (8, 8), ValueError)], "engine",
                                           ("downsample_backward", "in_spatial|spatial")),
        "upsample_nearest_backward.grad": (lambda v: F.upsample_nearest_backward(v, 2), _GRAD_BAD + [
            ("not_multiple", _x((2, 3, 4, 5)), ValueError)], "engine", ("upsample_nearest_backward",)),
        "upsample_zeros_backward.grad": (lambda v: F.upsample_zeros_backward(v, 2), _GRAD_BAD, "engine",
                                         ("upsample_zeros_backward",)),
        "pad.value": (lambda v: F.pad(_X4, ((1, 1),), "constant", value=v),
                      [("str", "a", TypeError), ("none", None, TypeError), ("list", [1.0], TypeError),
                       ("complex", 1j, TypeError), ("bool", True, TypeError)], "mine", ("pad", "value")),
        "pad.x": (lambda v: F.pad(v, ((1, 1),)), [("list", [[1.0, 2.0]], TypeError), ("int", np.ones((2, 2), int), TypeError),
                                                   ("none", None, TypeError), ("str", "ab", TypeError)], "mine",
                  ("pad", "input")),
        "dropout.training": (lambda v: F.dropout(_X4, 0.5, v), "bool", "mine", ("dropout", "training")),
        "dropout2d.training": (lambda v: F.dropout2d(_X4, 0.5, v), "bool", "mine", ("dropout2d", "training")),
        "conv2d.bias": (lambda v: F.conv2d(_X4, _W4, v), [("float64", _x((4,), np.float64), TypeError),
                                                         ("wrong_size", _x((3,)), ValueError),
                                                         ("list", [0.0] * 4, TypeError),
                                                         ("int", np.zeros(4, int), TypeError)], "engine",
                        ("conv", "bias")),
        "conv_transpose.bias": (lambda v: F.conv_transpose(_X4, _x((3, 4, 3, 3)), v),
                                [("float64", _x((4,), np.float64), TypeError), ("wrong_size", _x((3,)), ValueError)],
                                "engine", ("conv", "bias")),
        "erf.x": (lambda v: F.erf(v), [("str", "a", TypeError), ("object", np.array([None]), TypeError)], "mine",
                  ("erf",)),
    }
    cases = []
    for name, (call, kind, owner, names) in ops.items():
        for label, value, exc in _kind_values(kind):
            cases.append(Case(f"functional-{name}-{label}", lambda c=call, v=value: c(v), exc, names, owner,
                              ("functional",)))
    # bad x into every element-wise op
    for op in ("relu", "sigmoid", "tanh", "silu", "gelu", "elu", "leaky_relu", "softplus", "softmax", "log_softmax",
               "dropout"):
        for label, value, exc in (("list", [[1.0]], TypeError), ("int", np.ones(3, int), TypeError),
                                  ("none", None, TypeError), ("complex", np.ones(3, complex), TypeError)):
            fn = getattr(F, op)
            call = (lambda f=fn, v=value: f(v, dim=0)) if "softmax" in op else (lambda f=fn, v=value: f(v))
            cases.append(Case(f"functional-{op}.x-{label}", call, exc, (op.split("_")[0],), "mine", ("functional",)))
    return cases


# ---------------------------------------------------------------------------------------
# optimisers, schedulers, clipping
# ---------------------------------------------------------------------------------------
def _params():
    return nn.Linear(3, 2, generator=0).parameters()


OPTIMISERS = {
    "SGD": (optim.SGD, dict(lr=0.1), {"lr": "nonneg_real", "momentum": "nonneg_real", "dampening": "real",
                                       "weight_decay": "nonneg_real", "nesterov": "bool", "maximize": "bool"}),
    "Adam": (optim.Adam, {}, {"lr": "nonneg_real", "eps": "nonneg_real", "weight_decay": "nonneg_real",
                              "amsgrad": "bool", "maximize": "bool",
                              "betas": [("scalar", 0.9, TypeError), ("one", (0.9,), TypeError), ("str", "ab", TypeError),
                                        ("b1_one", (1.0, 0.999), ValueError), ("b2_neg", (0.9, -0.1), ValueError),
                                        ("b1_nan", (NAN, 0.9), ValueError), ("b2_str", (0.9, "x"), TypeError)]}),
    "AdamW": (optim.AdamW, {}, {"lr": "nonneg_real", "eps": "nonneg_real", "weight_decay": "nonneg_real",
                                "amsgrad": "bool", "maximize": "bool"}),
}


def _sched(cls, **kw):
    return lambda: cls(optim.SGD(_params(), lr=0.1, momentum=0.9), **kw)


SCHEDULERS = {
    "StepLR": (optim.lr_scheduler.StepLR, dict(step_size=2),
               {"step_size": "pos_int", "gamma": "nonneg_real",
                "last_epoch": [v for v in BAD["int"]] + [("below", -2, ValueError)]}),
    "CosineAnnealingLR": (optim.lr_scheduler.CosineAnnealingLR, dict(T_max=3),
                          {"T_max": "pos_int", "eta_min": "nonneg_real"}),
    "OneCycleLR": (optim.lr_scheduler.OneCycleLR, dict(max_lr=0.1, total_steps=10),
                   {"total_steps": [v for v in BAD["pos_int"] if v[0] != "none"], "pct_start": "unit_real", "anneal_strategy": "choice",
                    "div_factor": "pos_real", "final_div_factor": "pos_real", "three_phase": "bool",
                    "cycle_momentum": "bool", "max_lr": [v for v in _REAL_TYPE if v[0] not in ("list", "array")]
                    + [("neg", -0.1, ValueError)]}),
}


def optim_cases() -> list[Case]:
    cases = []
    for name, (cls, base, args) in OPTIMISERS.items():
        for arg, kind in args.items():
            for label, value, exc in _kind_values(kind):
                cases.append(Case(f"ctor-{name}-{arg}-{label}",
                                  lambda c=cls, k={**base, arg: value}: c(_params(), **k), exc, (name, arg), "mine",
                                  ("optim",)))
        for label, params, exc, what in (("none", None, TypeError, "iterable|NoneType"),
                                         ("array", np.ones(3), TypeError, "params"),
                                         ("empty", [], ValueError, "empty"),
                                         ("ints", [1, 2], TypeError, "Parameters"),
                                         ("set", set(), TypeError, "ordered"),
                                         ("dup", "dup", ValueError, "twice")):
            def run(cls=cls, base=base, params=params):
                if isinstance(params, str) and params == "dup":
                    p = nn.Parameter(np.ones(2, np.float32))
                    params = [p, p]
                return cls(params, **base)
            cases.append(Case(f"ctor-{name}-params-{label}", run, exc, (name, what), "mine", ("optim",)))
        for label, grad, exc, what in (("shape", np.ones((5,), np.float32), ValueError, "shape"),
                                       ("str", np.array(["a"] * 6).reshape(2, 3), TypeError, "grad"),
                                       ("object", np.array([object()] * 6).reshape(2, 3), TypeError, "grad"),
                                       ("complex", np.ones((2, 3), complex), TypeError, "grad")):
            def run(cls=cls, base=base, grad=grad):
                lin = nn.Linear(3, 2, generator=0)
                opt = cls(lin.parameters(), **base)
                lin.weight.grad = grad
                opt.step()
            cases.append(Case(f"step-{name}-grad-{label}", run, exc, (name, what), "mine", ("optim",)))
        for label, state, exc, what in (("list", [], ValueError, "state"), ("none", None, ValueError, "state"),
                                        ("no_groups", {"state": {}}, ValueError, "param_groups"),
                                        ("two_groups", "two_groups", ValueError, "param groups"),
                                        ("bad_lr", "bad_lr", TypeError, "lr"),
                                        ("nan_lr", "nan_lr", ValueError, "lr"),
                                        ("bad_index", "bad_index", ValueError, "index"),
                                        ("bad_shape", "bad_shape", ValueError, "shape"),
                                        ("str_key", "str_key", ValueError, "index|state")):
            def run(cls=cls, base=base, state=state):
                lin = nn.Linear(3, 2, generator=0)
                opt = cls(lin.parameters(), **base)
                good = opt.state_dict()
                if isinstance(state, str):
                    group = dict(good["param_groups"][0])
                    if state == "two_groups":
                        state = {"state": {}, "param_groups": [group, group]}
                    elif state in ("bad_lr", "nan_lr"):
                        state = {"state": {}, "param_groups": [{**group, "lr": "abc" if state == "bad_lr" else NAN}]}
                    elif state == "bad_index":
                        state = {"state": {"7": {"step": 1}}, "param_groups": [group]}
                    elif state == "bad_shape":
                        state = {"state": {"0": {"momentum_buffer": np.ones(3), "exp_avg": np.ones(3)}},
                                 "param_groups": [group]}
                    elif state == "str_key":
                        state = {"state": {"zero": {}}, "param_groups": [group]}
                return opt.load_state_dict(state)
            cases.append(Case(f"load_state_dict-{name}-{label}", run, exc, (name, what), "mine", ("optim",)))
    for name, (cls, base, args) in SCHEDULERS.items():
        for arg, kind in args.items():
            for label, value, exc in _kind_values(kind):
                cases.append(Case(f"ctor-{name}-{arg}-{label}", _sched(cls, **{**base, arg: value}), exc, (name, arg),
                                  "mine", ("optim",)))
        cases.append(Case(f"ctor-{name}-optimizer-none", lambda c=cls, b=base: c(None, **b), TypeError,
                          (name, "Optimizer"), "mine", ("optim",)))
    for name, (cls, base, args) in SCHEDULERS.items():
        for label, edit, exc, what in (("list", lambda st: [1], TypeError, "dict"),
                                       ("none", lambda st: None, TypeError, "dict"),
                                       ("step_key", lambda st: {**st, "step": 5}, ValueError, "step"),
                                       ("optimizer_key", lambda st: {**st, "optimizer": None}, ValueError, "optimizer"),
                                       ("last_epoch_str", lambda st: {**st, "last_epoch": "x"}, TypeError, "last_epoch"),
                                       ("last_epoch_float", lambda st: {**st, "last_epoch": 1.5}, TypeError, "last_epoch"),
                                       ("base_lrs_short", lambda st: {**st, "base_lrs": []}, ValueError, "base_lrs"),
                                       ("base_lrs_str", lambda st: {**st, "base_lrs": ["a"]}, TypeError, "base_lrs"),
                                       ("base_lrs_nan", lambda st: {**st, "base_lrs": [NAN]}, ValueError, "base_lrs")):
            def run(make=_sched(cls, **base), edit=edit):
                sched = make()
                return sched.load_state_dict(edit(sched.state_dict()))
            cases.append(Case(f"load_state_dict-{name}-{label}", run, exc, (name, what), "mine", ("optim",)))
    for label, value, exc in BAD["nonneg_real"]:
        cases.append(Case(f"clip_grad_norm_-max_norm-{label}", lambda v=value: optim.clip_grad_norm_(_params(), v), exc,
                          ("clip_grad_norm_", "max_norm"), "mine", ("optim",)))
        cases.append(Case(f"clip_grad_value_-clip_value-{label}", lambda v=value: optim.clip_grad_value_(_params(), v),
                          exc, ("clip_grad_value_", "clip_value"), "mine", ("optim",)))
    for label, value, exc in (("str", "two", TypeError), ("none", None, TypeError), ("nan", NAN, ValueError),
                              ("list", [2.0], TypeError)):
        cases.append(Case(f"clip_grad_norm_-norm_type-{label}", lambda v=value: optim.clip_grad_norm_(_params(), 1.0, v),
                          exc, ("clip_grad_norm_", "norm_type"), "mine", ("optim",)))
    return cases


def optim_call_cases() -> list[Case]:
    """step's closure and the clipping functions' parameters: wrong kinds named, never a raw
    'object is not callable / iterable'."""
    cases = []
    for name, (cls, base, _) in OPTIMISERS.items():
        for label, value in (("int", 3), ("str", "loss"), ("float", 1.0), ("array", np.ones(2))):
            cases.append(Case(f"step-{name}-closure-{label}", lambda c=cls, b=base, v=value: c(_params(), **b).step(v),
                              TypeError, (name, "closure", "callable"), "mine", ("optim",)))
    for fn, args in ((optim.clip_grad_norm_, (1.0,)), (optim.clip_grad_value_, (1.0,))):
        for label, value in (("none", None), ("int", 3), ("float", 1.5)):
            cases.append(Case(f"{fn.__name__}-parameters-{label}", lambda f=fn, v=value, a=args: f(v, *a), TypeError,
                              (fn.__name__, "Parameter"), "mine", ("optim",)))
    return cases


# ---------------------------------------------------------------------------------------
# gradcheck's own arguments
# ---------------------------------------------------------------------------------------
def gradcheck_cases() -> list[Case]:
    from convgrad import gradcheck
    x = _x((2, 3), np.float64)
    cases = []
    for arg, kind in (("eps", "pos_real"), ("atol", "nonneg_real"), ("rtol", "nonneg_real"),
                      ("seed", [v for v in BAD["nonneg_int"] if v[0] != "list1"]), ("check_inputs", "bool")):
        for label, value, exc in _kind_values(kind):
            cases.append(Case(f"gradcheck-{arg}-{label}",
                              lambda a=arg, v=value: gradcheck(nn.Tanh(), x, **{a: v}), exc, ("gradcheck", arg),
                              "mine", ("tools",)))
    for label, target, inputs, exc, what in (
            ("no_input", nn.Tanh(), (), ValueError, "input"),
            ("int_input", nn.Tanh(), (np.ones(3, int),), TypeError, "input"),
            ("list_input", nn.Tanh(), ([1.0, 2.0],), TypeError, "input"),
            ("two_inputs", nn.Tanh(), (x, x), ValueError, "one input"),
            ("numpy_function_no_backward", np.tanh, (x,), TypeError, "backward"),
            ("function_returning_array", lambda t: np.ones(3), (x,), TypeError, "Tensor"),
            ("not_callable", 3, (x,), TypeError, "target")):
        cases.append(Case(f"gradcheck-{label}", lambda t=target, i=inputs: gradcheck(t, *i), exc, ("gradcheck", what),
                          "mine", ("tools",)))
    return cases


# ---------------------------------------------------------------------------------------
# Module.load_state_dict (the lead's module.py): entries that are not what the model holds
# ---------------------------------------------------------------------------------------
def state_dict_cases() -> list[Case]:
    layers = {"Linear": lambda: nn.Linear(3, 2, generator=0), "Conv2d": lambda: nn.Conv2d(2, 3, 3, generator=0),
              "BatchNorm2d": lambda: nn.BatchNorm2d(3), "LayerNorm": lambda: nn.LayerNorm(4),
              "GroupNorm": lambda: nn.GroupNorm(1, 2)}
    bad = [("str", lambda a: "abc", TypeError), ("str_array", lambda a: np.full(a.shape, "x"), TypeError),
           ("none", lambda a: None, TypeError), ("object", lambda a: np.zeros(a.shape, object), TypeError),
           ("wrong_shape", lambda a: np.zeros(a.shape + (2,), a.dtype), ValueError),
           ("scalar", lambda a: np.float32(1.0), ValueError)]
    cases = []
    for name, make in layers.items():
        for key in ("weight", "bias"):
            for label, value, exc in bad:
                def run(make=make, key=key, value=value):
                    layer = make()
                    state = layer.state_dict()
                    state[key] = value(state[key])
                    return layer.load_state_dict(state)
                cases.append(Case(f"load_state_dict-{name}-{key}-{label}", run, exc, (name, key), "lead",
                                  ("state_dict",)))
        for label, state, exc, what in (("list", [1, 2], TypeError, "dict"), ("none", None, TypeError, "dict"),
                                        ("missing", {}, KeyError, "missing"),
                                        ("unexpected", "unexpected", KeyError, "unexpected")):
            def run(make=make, state=state):
                layer = make()
                if isinstance(state, str):
                    state = {**layer.state_dict(), "extra.key": np.zeros(1)}
                return layer.load_state_dict(state)
            cases.append(Case(f"load_state_dict-{name}-{label}", run, exc, (name, what), "lead", ("state_dict",)))
    return cases


# ---------------------------------------------------------------------------------------
# recorded mode: convgrad.tensor and Tensor methods
# ---------------------------------------------------------------------------------------
def tensor_cases() -> list[Case]:
    import convgrad as cg
    a = _x((2, 3), np.float64)
    rows = [  # (label, call, exception, regexes)
        ("tensor-data-str", lambda: cg.tensor("abc"), TypeError, ("tensor", "numbers|dtype")),
        ("tensor-data-none", lambda: cg.tensor(None), TypeError, ("tensor", "NoneType")),
        ("tensor-data-object", lambda: cg.tensor(np.array([object()])), TypeError, ("tensor", "object")),
        ("tensor-data-complex", lambda: cg.tensor(np.ones(2, complex)), TypeError, ("tensor", "complex")),
        ("tensor-data-dict", lambda: cg.tensor({"a": 1}), TypeError, ("tensor", "dict")),
        ("tensor-data-ragged", lambda: cg.tensor([[1.0], [1.0, 2.0]]), ValueError, ("tensor", "list")),
        ("tensor-dtype-bogus", lambda: cg.tensor(a, dtype="bogus"), TypeError, ("tensor", "dtype", "bogus")),
        ("tensor-dtype-str-data", lambda: cg.tensor("x", dtype=np.float64), ValueError, ("tensor", "float64")),
        *[(f"tensor-requires_grad-{label}", lambda v=value: cg.tensor(a, requires_grad=v), exc, ("tensor", "requires_grad"))
          for label, value, exc in BAD["bool"]],
        ("tensor-requires_grad-int-data", lambda: cg.tensor(np.arange(3), requires_grad=True), TypeError, ("float",)),
        *[(f"clamp-{bound}-{label}", lambda b=bound, v=value: cg.tensor(a).clamp(**{b: v}), exc, ("clamp", bound))
          for bound in ("min", "max")
          for label, value, exc in (("str", "0", TypeError), ("list", [0.0], TypeError), ("complex", 1j, TypeError),
                                    ("array", np.zeros(3), TypeError), ("bool", True, TypeError))],
        ("clamp-none", lambda: cg.tensor(a).clamp(), ValueError, ("clamp", "min")),
        ("item-many", lambda: cg.tensor(a).item(), ValueError, ("item", "one-element", r"\(2, 3\)")),
        ("item-empty", lambda: cg.tensor(np.zeros(0)).item(), ValueError, ("item", "one-element")),
    ]
    # a Tensor that requires grad where the op gives it no gradient: an error, never a silent None
    logits, probs = (lambda: cg.tensor(_x((4, 3), np.float64), requires_grad=True),
                     lambda: cg.tensor(np.full((4, 3), 1 / 3), requires_grad=True))
    no_grad_for = {
        "CrossEntropyLoss-target": lambda: nn.CrossEntropyLoss()(logits(), probs()).backward(),
        "CrossEntropyLoss-smoothing-target": lambda: nn.CrossEntropyLoss(label_smoothing=0.1)(logits(), probs()).backward(),
        "cross_entropy-target": lambda: F.cross_entropy(logits(), probs()),
        "cross_entropy-weight": lambda: F.cross_entropy(logits(), _CLS, weight=cg.tensor(np.ones(3), requires_grad=True)),
        "nll_loss-weight": lambda: F.nll_loss(logits(), _CLS, weight=cg.tensor(np.ones(3), requires_grad=True)),
        "binary_cross_entropy_with_logits-weight": lambda: F.binary_cross_entropy_with_logits(
            logits(), probs(), weight=cg.tensor(np.ones(3), requires_grad=True)),
        "binary_cross_entropy_with_logits-pos_weight": lambda: F.binary_cross_entropy_with_logits(
            logits(), probs(), pos_weight=cg.tensor(np.ones(3), requires_grad=True)),
        "batch_norm-running_mean": lambda: F.batch_norm(cg.tensor(_x((4, 3), np.float64), requires_grad=True),
                                                        cg.tensor(np.zeros(3), requires_grad=True), np.ones(3),
                                                        training=True),
    }
    rows += [(f"requires_grad_without_gradient-{label}", fn, RuntimeError, ("requires grad", "no gradient"))
             for label, fn in no_grad_for.items()]
    return [Case(f"tensor-{label}" if not label.startswith(("tensor", )) else label, fn, exc, names, "mine",
                  ("recorded",)) for label, fn, exc, names in rows]


# ---------------------------------------------------------------------------------------
# Module methods: to, train, requires_grad_, assigning over a Parameter
# ---------------------------------------------------------------------------------------
def module_method_cases() -> list[Case]:
    makers = {"Linear": lambda: nn.Linear(3, 2, generator=0), "Conv2d": lambda: nn.Conv2d(2, 3, 3, generator=0),
              "BatchNorm2d": lambda: nn.BatchNorm2d(3), "Sequential": lambda: nn.Sequential(nn.Linear(3, 2), nn.ReLU())}
    cases = []
    for name, make in makers.items():
        for label, value, exc in BAD["dtype"] + [("none", None, TypeError), ("device", "cuda", TypeError),
                                                 ("bool", bool, TypeError)]:
            cases.append(Case(f"module-{name}.to-{label}", lambda m=make, v=value: m().to(v), exc,
                              (re.escape(name), "dtype"), "lead", ("module",)))
        for method, arg in (("train", "mode"), ("requires_grad_", "requires_grad")):
            for label, value, exc in BAD["bool"]:
                cases.append(Case(f"module-{name}.{method}-{label}",
                                  lambda m=make, f=method, v=value: getattr(m(), f)(v), exc,
                                  (re.escape(name), arg), "lead", ("module",)))
    for name, param in (("Linear", "weight"), ("Linear", "bias"), ("Conv2d", "weight"), ("BatchNorm2d", "weight")):
        for label, value in (("ndarray", np.ones(3, np.float32)), ("list", [1.0]), ("float", 1.0), ("str", "w")):
            def run(make=makers[name], param=param, value=value):
                setattr(make(), param, value)
            cases.append(Case(f"module-{name}.setattr-{param}-{label}", run, TypeError, (re.escape(name), param, "Parameter"),
                              "lead", ("module",)))
    for label, value, exc, what in (("int", np.ones(3, int), TypeError, "floating"),
                                    ("bool", np.ones(3, bool), TypeError, "floating"),
                                    ("str", "abc", TypeError, "floating"),
                                    ("object", np.array([object()]), TypeError, "floating"),
                                    ("complex", np.ones(2, complex), TypeError, "floating")):
        cases.append(Case(f"module-Parameter-data-{label}", lambda v=value: nn.Parameter(v), exc, ("Parameter", what),
                          "lead", ("module",)))
    for label, value, exc in BAD["bool"]:
        cases.append(Case(f"module-Parameter-requires_grad-{label}",
                          lambda v=value: nn.Parameter(np.ones(2, np.float32), requires_grad=v), exc,
                          ("Parameter", "requires_grad"), "lead", ("module",)))
    # a scale_factor tuple of another rank than the input's spatial axes: named by the layer
    for label, factor, shape in (("pair_on_1d", (2, 2), (1, 2, 4)), ("triple_on_2d", (2, 2, 2), (1, 2, 4, 4)),
                                 ("single_on_3d", (2,), (1, 2, 2, 2, 2))):
        for mode in ("nearest", "zeros"):
            cases.append(Case(f"forward-Upsample[{mode}]-scale_factor-{label}",
                              lambda f=factor, s=shape, m=mode: nn.Upsample(scale_factor=f, mode=m)(_x(s)),
                              TypeError, ("Upsample", "scale factor"), "mine", ("forward",)))
    return cases


# ---------------------------------------------------------------------------------------
# library entry points: Identity's backward, models.build, manual_seed, gradcheck's callables
# and inputs, Tensor.backward's retain_graph
# ---------------------------------------------------------------------------------------
def conv_transpose_output_size_cases() -> list[Case]:
    """ConvTranspose's output_size (torch's forward argument): sizes the stride cannot reach,
    wrong lengths and kinds."""
    cases = []
    for n in (1, 2, 3):
        cls = getattr(nn, f"ConvTranspose{n}d")
        x = _x((1, 2) + (4,) * n)          # k=3, stride 2, padding 1: reachable sizes 7..8
        for label, size, exc, what in (("too_big", (20,) * n, ValueError, "not reachable"),
                                       ("too_small", (6,) * n, ValueError, "not reachable"),
                                       ("short", (8,) * (n - 1) or (), ValueError, "entries"),
                                       ("long", (8,) * (n + 1), ValueError, "entries"),
                                       ("floats", (8.0,) * n, TypeError, "ints"), ("str", "8", TypeError, "ints"),
                                       ("int", 8, TypeError, "ints")):
            cases.append(Case(f"forward-{cls.__name__}-output_size-{label}",
                              lambda c=cls, s=size, x=x: c(2, 3, 3, stride=2, padding=1)(x, output_size=s), exc,
                              (cls.__name__, "output_size", what), "engine", ("forward",)))
    return cases


def api_cases() -> list[Case]:
    import convgrad as cg
    from convgrad import models

    def identity_backward(make_g):
        m = nn.Identity()
        y = m(_x((2, 3)))
        return m.backward(make_g(y))
    rows = [(f"backward-Identity-{label}", lambda f=make_g: identity_backward(f), exc, ("Identity", "grad_output"))
            for label, make_g, exc in _BAD_GRADS]
    for name in models.MODELS:
        for arg, values in (("in_channels", (("zero", 0, ValueError), ("str", "1", TypeError), ("float", 1.0, TypeError))),
                            ("image_size", (("zero", 0, ValueError), ("huge", 10 ** 6, ValueError),
                                            ("str", "28", TypeError), ("float", 28.0, TypeError))),
                            ("num_classes", (("zero", 0, ValueError), ("neg", -2, ValueError), ("float", 2.5, TypeError),
                                             ("none", None, TypeError)))):
            for label, value, exc in values:
                rows.append((f"models.build-{name}-{arg}-{label}", lambda n=name, a=arg, v=value: models.build(n, **{a: v}),
                             exc, (re.escape(f"models.build('{name}')"), arg)))
    rows += [("models.build-lenet-image_size-too_small", lambda: models.build("lenet", image_size=9), ValueError,
              ("lenet", "image_size", ">= 10")),
             ("models.build-cnn-image_size-too_small", lambda: models.build("cnn", image_size=3), ValueError,
              ("cnn", "image_size", ">= 4"))]
    rows += [(f"manual_seed-{label}", lambda v=value: cg.manual_seed(v), exc, ("manual_seed", "seed"))
             for label, value, exc in (("neg", -1, ValueError), ("str", "1", TypeError), ("float", 1.5, TypeError),
                                       ("none", None, TypeError))]
    x = _x((3,), np.float64)
    rows += [("gradcheck-backward-not_callable", lambda: cg.gradcheck(lambda t: t * 2, x, backward=3), TypeError,
              ("gradcheck", "backward", "callable")),
             ("gradcheck-progress-not_callable", lambda: cg.gradcheck(nn.Tanh(), x, progress="bar"), TypeError,
              ("gradcheck", "progress", "callable"))]
    for label, value in (("nan", np.nan), ("inf", np.inf), ("ninf", -np.inf)):
        rows.append((f"gradcheck-input-{label}", lambda v=value: cg.gradcheck(nn.Tanh(), np.array([v, 1.0])), ValueError,
                     ("gradcheck", "input 0", "finite")))
    for label, value, exc in BAD["bool"]:
        rows.append((f"tensor-backward-retain_graph-{label}",
                     lambda v=value: (cg.tensor(x, requires_grad=True) * 2).sum().backward(retain_graph=v), exc,
                     ("backward", "retain_graph")))
    return [Case(label, fn, exc, names, "mine", ("api",)) for label, fn, exc, names in rows]


def all_cases() -> list[Case]:
    return (constructor_cases() + forward_cases() + backward_cases() + loss_cases() + functional_cases()
            + optim_cases() + gradcheck_cases() + state_dict_cases() + tensor_cases() + module_method_cases() + optim_call_cases() + api_cases()
            + conv_transpose_output_size_cases())


# ---------------------------------------------------------------------------------------
# python tests/bad_input_cases.py: what each failing case does today (regenerates
# tests/bad_inputs_engine_xfail.py for the engine's cases; lists any other failure)
# ---------------------------------------------------------------------------------------
def observe(case: Case) -> str | None:
    """None if the case passes, else what happened instead."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            case.fn()
        except Exception as err:             # noqa: BLE001 - classifying what came
            message = str(err)
            if not isinstance(err, case.exc):
                return f"raises {type(err).__name__} ({message[:90]}) instead of {case.exc.__name__}"
            missing = [p for p in case.names if not re.search(p, message, re.IGNORECASE)]
            return f"message {message[:90]!r} does not name {missing}" if missing else None
        return f"no error (expected {case.exc.__name__})"


if __name__ == "__main__":
    import pprint
    failures = {c.id: (c.owner, observe(c)) for c in all_cases()}
    failures = {k: v for k, v in failures.items() if v[1] is not None}
    engine = {k: why for k, (owner, why) in failures.items() if owner != "mine"}
    with open(__file__.replace("bad_input_cases.py", "bad_inputs_engine_xfail.py"), "w") as f:
        f.write('"""Catalogue cases in the engine helper\'s files that fail today, with what they do instead\n'
                '(regenerated by `python tests/bad_input_cases.py`; strict xfails in test_bad_inputs.py)."""\n\n'
                "ENGINE_XFAIL = " + pprint.pformat(engine, width=120, sort_dicts=True) + "\n")
    others = {k: why for k, (owner, why) in failures.items() if owner == "mine"}
    print(f"{len(engine)} failures in others' files written; {len(others)} failures in mine")
    for k, why in others.items():
        print(k, "|", why)
