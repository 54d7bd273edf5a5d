"""Valid edge cases give torch's answer (issue 11), in float64 against torch:

- an empty batch (N = 0) forward and backward, batch 1, 1x1 spatial maps;
- NaN and inf propagate element-wise as in torch (one NaN stays where torch puts it);
- the caller writing into the input or the output between forward and backward changes
  nothing (torch refuses such a backward; convgrad keeps what backward needs to itself).

Layers in the engine helper's files that do not give torch's answer yet are strict xfails
(ENGINE_XFAIL, MUTATION_XFAIL below, with the behaviour observed; none today).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from convgrad import nn

TOL = dict(rtol=1e-10, atol=1e-12, equal_nan=True)


def _torch_of(layer, t_layer):
    """t_layer with layer's parameters and buffers (float64)."""
    t_layer = t_layer.double()
    state = {k: torch.from_numpy(np.array(v)) for k, v in layer.state_dict().items()}
    t_layer.load_state_dict(state)
    return t_layer


# id -> (convgrad factory, torch factory, input shape for (N, spatial size s), owner)
def _bn_eval(cls, tcls):
    def make():
        m = cls(3, dtype=np.float64)
        m.running_mean[...] = [0.1, -0.2, 0.3]
        m.running_var[...] = [1.5, 0.5, 2.0]
        return m.eval()
    return make, lambda: tcls(3).eval()


LAYERS = {
    "ReLU": (lambda: nn.ReLU(), lambda: torch.nn.ReLU(), lambda n, s: (n, 3, s, s), "mine"),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2), lambda n, s: (n, 3, s, s), "mine"),
    "ELU": (lambda: nn.ELU(0.7), lambda: torch.nn.ELU(0.7), lambda n, s: (n, 3, s, s), "mine"),
    "GELU": (lambda: nn.GELU(), lambda: torch.nn.GELU(), lambda n, s: (n, 3, s, s), "mine"),
    "GELU-tanh": (lambda: nn.GELU("tanh"), lambda: torch.nn.GELU("tanh"), lambda n, s: (n, 3, s, s), "mine"),
    "Sigmoid": (lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid(), lambda n, s: (n, 3, s, s), "mine"),
    "Tanh": (lambda: nn.Tanh(), lambda: torch.nn.Tanh(), lambda n, s: (n, 3, s, s), "mine"),
    "Softplus": (lambda: nn.Softplus(2.0, 5.0), lambda: torch.nn.Softplus(2.0, 5.0), lambda n, s: (n, 3, s, s), "mine"),
    "SiLU": (lambda: nn.SiLU(), lambda: torch.nn.SiLU(), lambda n, s: (n, 3, s, s), "mine"),
    "Softmax": (lambda: nn.Softmax(1), lambda: torch.nn.Softmax(1), lambda n, s: (n, 3, s, s), "mine"),
    "LogSoftmax": (lambda: nn.LogSoftmax(1), lambda: torch.nn.LogSoftmax(1), lambda n, s: (n, 3, s, s), "mine"),
    "Linear": (lambda: nn.Linear(5, 4, generator=0, dtype=np.float64), lambda: torch.nn.Linear(5, 4),
               lambda n, s: (n, s, 5), "mine"),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3, dtype=np.float64), lambda: torch.nn.BatchNorm1d(3),
                    lambda n, s: (n, 3, s), "mine"),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3, dtype=np.float64), lambda: torch.nn.BatchNorm2d(3),
                    lambda n, s: (n, 3, s, s), "mine"),
    "BatchNorm2d-eval": (*_bn_eval(nn.BatchNorm2d, torch.nn.BatchNorm2d), lambda n, s: (n, 3, s, s), "mine"),
    "LayerNorm": (lambda: nn.LayerNorm((3, 2), dtype=np.float64), lambda: torch.nn.LayerNorm((3, 2)),
                  lambda n, s: (n, s, 3, 2), "mine"),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4, dtype=np.float64), lambda: torch.nn.GroupNorm(2, 4),
                  lambda n, s: (n, 4, s, s), "mine"),
    "Flatten": (lambda: nn.Flatten(), lambda: torch.nn.Flatten(), lambda n, s: (n, 3, s, s), "mine"),
    "Upsample": (lambda: nn.Upsample(2), lambda: torch.nn.Upsample(scale_factor=2), lambda n, s: (n, 3, s, s), "mine"),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1, generator=0, dtype=np.float64),
               lambda: torch.nn.Conv2d(3, 4, 3, padding=1), lambda n, s: (n, 3, s, s), "engine"),
    "Conv2d-1x1": (lambda: nn.Conv2d(3, 4, 1, generator=0, dtype=np.float64), lambda: torch.nn.Conv2d(3, 4, 1),
                   lambda n, s: (n, 3, s, s), "engine"),
    "Conv2d-depthwise": (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4, generator=0, dtype=np.float64),
                         lambda: torch.nn.Conv2d(4, 4, 3, padding=1, groups=4), lambda n, s: (n, 4, s, s), "engine"),
    "Conv2d-reflect": (lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect", generator=0, dtype=np.float64),
                       lambda: torch.nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"),
                       lambda n, s: (n, 3, max(s, 2), max(s, 2)), "engine"),
    "Conv1d": (lambda: nn.Conv1d(3, 4, 3, padding=1, generator=0, dtype=np.float64),
               lambda: torch.nn.Conv1d(3, 4, 3, padding=1), lambda n, s: (n, 3, s), "engine"),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, generator=0, dtype=np.float64),
                        lambda: torch.nn.ConvTranspose2d(3, 4, 3, stride=2), lambda n, s: (n, 3, s, s), "engine"),
    "Conv2d-depthwise-s2": (lambda: nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4, generator=0, dtype=np.float64),
                            lambda: torch.nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4),
                            lambda n, s: (n, 4, s, s), "engine"),
    "Conv2d-groups2": (lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2, generator=0, dtype=np.float64),
                       lambda: torch.nn.Conv2d(4, 6, 3, padding=1, groups=2), lambda n, s: (n, 4, s, s), "engine"),
    "Conv2d-circular": (lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular", generator=0, dtype=np.float64),
                        lambda: torch.nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"),
                        lambda n, s: (n, 3, s, s), "engine"),
    "Conv3d": (lambda: nn.Conv3d(2, 3, 2, padding=1, generator=0, dtype=np.float64),
               lambda: torch.nn.Conv3d(2, 3, 2, padding=1), lambda n, s: (n, 2, s, s, s), "engine"),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(3, 4, 3, stride=2, generator=0, dtype=np.float64),
                        lambda: torch.nn.ConvTranspose1d(3, 4, 3, stride=2), lambda n, s: (n, 3, s), "engine"),
    "ConvTranspose3d-groups": (lambda: nn.ConvTranspose3d(4, 2, 2, stride=2, groups=2, generator=0, dtype=np.float64),
                               lambda: torch.nn.ConvTranspose3d(4, 2, 2, stride=2, groups=2),
                               lambda n, s: (n, 4, s, s, s), "engine"),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), lambda n, s: (n, 3, 2 * s, 2 * s), "engine"),
    "AvgPool2d": (lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), lambda n, s: (n, 3, 2 * s, 2 * s), "engine"),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(1), lambda: torch.nn.AdaptiveAvgPool2d(1),
                          lambda n, s: (n, 3, s, s), "engine"),
    "AdaptiveAvgPool2d-3": (lambda: nn.AdaptiveAvgPool2d(3), lambda: torch.nn.AdaptiveAvgPool2d(3),
                            lambda n, s: (n, 3, 3 * s, 3 * s), "engine"),
    "AdaptiveAvgPool1d-2": (lambda: nn.AdaptiveAvgPool1d(2), lambda: torch.nn.AdaptiveAvgPool1d(2),
                            lambda n, s: (n, 3, 3 * s), "engine"),
    "AvgPool3d": (lambda: nn.AvgPool3d(2, padding=1), lambda: torch.nn.AvgPool3d(2, padding=1),
                  lambda n, s: (n, 2, 2 * s, 2 * s, 2 * s), "engine"),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d(1), lambda: torch.nn.AdaptiveMaxPool2d(1),
                          lambda n, s: (n, 3, s, s), "engine"),
}

# (layer id, edge case) -> what the engine does today (strict xfails)
ENGINE_XFAIL = {}


def _run_pair(name, x, g=None, mutate=None):
    """convgrad and torch on x: (y, dx, param grads) each, float64."""
    make, tmake, _, _ = LAYERS[name]
    layer = make().to(np.float64)
    t_layer = _torch_of(layer, tmake())
    t_layer.train(layer.training)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = layer(x.copy())
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = t_layer(tx)
    if g is None:
        g = np.random.default_rng(1).standard_normal(ty.shape)
    dx = layer.backward(g.copy())
    ty.backward(torch.from_numpy(g.copy()))
    grads = {k: p.grad for k, p in layer.named_parameters()}
    t_grads = {k: p.grad.numpy() for k, p in t_layer.named_parameters()}
    return (y, dx, grads), (ty.detach().numpy(), tx.grad.numpy(), t_grads)


def _compare(ours, theirs):
    (y, dx, grads), (ty, tdx, tgrads) = ours, theirs
    assert y.shape == ty.shape
    np.testing.assert_allclose(y, ty, **TOL)
    assert dx.shape == tdx.shape
    np.testing.assert_allclose(dx, tdx, **TOL)
    for k, tg in tgrads.items():
        assert grads[k] is not None and grads[k].shape == tg.shape, k
        np.testing.assert_allclose(grads[k], tg, **TOL, err_msg=k)


def _input(name, n, s, seed=0):
    return np.random.default_rng(seed).standard_normal(LAYERS[name][2](n, s))


EDGES = {
    "empty_batch": lambda name: _input(name, 0, 3),
    "batch_1": lambda name: _input(name, 1, 3),
    "map_1x1": lambda name: _input(name, 2, 1),
    "one_nan": lambda name: _with(name, np.nan),
    "one_inf": lambda name: _with(name, np.inf),
    "one_minus_inf": lambda name: _with(name, -np.inf),
}


def _with(name, value):
    x = _input(name, 2, 3)
    x.reshape(-1)[x.size // 3] = value
    return x


def _cases():
    for name, spec in LAYERS.items():
        for edge in EDGES:
            if name.startswith("BatchNorm") and edge == "batch_1" and "eval" not in name and name != "BatchNorm2d":
                continue                      # (1, C, L) in training is fine; (1, C) would be torch's error
            marks = []
            if (name, edge) in ENGINE_XFAIL:
                assert spec[3] == "engine"
                marks.append(pytest.mark.xfail(strict=True, reason=ENGINE_XFAIL[(name, edge)]))
            yield pytest.param(name, edge, id=f"{name}-{edge}", marks=marks)


@pytest.mark.parametrize("name, edge", list(_cases()))
def test_edge_case_matches_torch(name, edge):
    x = EDGES[edge](name)
    _compare(*_run_pair(name, x))


# ---------------------------------------------------------------------------------------
# writing into the input or the output between forward and backward changes nothing
# ---------------------------------------------------------------------------------------
MUTATION_XFAIL = {}


def _mutation_cases():
    for name, spec in LAYERS.items():
        for what in ("input", "output"):
            marks = []
            if (name, what) in MUTATION_XFAIL:
                assert spec[3] == "engine"
                marks.append(pytest.mark.xfail(strict=True, reason=MUTATION_XFAIL[(name, what)]))
            yield pytest.param(name, what, id=f"{name}-{what}", marks=marks)


@pytest.mark.parametrize("name, what", list(_mutation_cases()))
def test_writing_into_input_or_output_before_backward_changes_nothing(name, what):
    make = LAYERS[name][0]
    x = _input(name, 2, 3)
    g = None
    results = []
    for scribble in (False, True):
        layer = make().to(np.float64)
        xin = x.copy()
        y = layer(xin)
        if g is None:
            g = np.random.default_rng(2).standard_normal(y.shape)
        if scribble:
            target = xin if what == "input" else y
            if target.flags.writeable:
                target[...] = 7.0
        dx = layer.backward(g.copy())
        results.append((dx, {k: p.grad.copy() for k, p in layer.named_parameters()}))
    (dx0, p0), (dx1, p1) = results
    np.testing.assert_array_equal(dx1, dx0)
    for k in p0:
        np.testing.assert_array_equal(p1[k], p0[k], err_msg=k)


# ---------------------------------------------------------------------------------------
# losses on an empty batch, one sample, and with a NaN logit
# ---------------------------------------------------------------------------------------
LOSSES = {
    "CrossEntropyLoss": (lambda r: nn.CrossEntropyLoss(reduction=r), lambda r: torch.nn.CrossEntropyLoss(reduction=r), "index"),
    "CrossEntropyLoss-smooth": (lambda r: nn.CrossEntropyLoss(reduction=r, label_smoothing=0.2),
                                lambda r: torch.nn.CrossEntropyLoss(reduction=r, label_smoothing=0.2), "index"),
    "NLLLoss": (lambda r: nn.NLLLoss(reduction=r), lambda r: torch.nn.NLLLoss(reduction=r), "index"),
    "MSELoss": (lambda r: nn.MSELoss(reduction=r), lambda r: torch.nn.MSELoss(reduction=r), "same"),
    "L1Loss": (lambda r: nn.L1Loss(reduction=r), lambda r: torch.nn.L1Loss(reduction=r), "same"),
    "BCEWithLogitsLoss": (lambda r: nn.BCEWithLogitsLoss(reduction=r), lambda r: torch.nn.BCEWithLogitsLoss(reduction=r),
                          "prob"),
}


@pytest.mark.parametrize("n, nan", [(0, False), (1, False), (3, True)], ids=["empty_batch", "batch_1", "one_nan"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_edge_case_matches_torch(name, reduction, n, nan):
    make, tmake, kind = LOSSES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4))
    if nan:
        x[1, 2] = np.nan
    t = {"index": lambda: rng.integers(0, 4, n), "same": lambda: rng.standard_normal((n, 4)),
         "prob": lambda: rng.uniform(0, 1, (n, 4))}[kind]()
    loss, t_loss = make(reduction), tmake(reduction)
    value = loss(x.copy(), t)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    tv = t_loss(tx, torch.from_numpy(t))
    np.testing.assert_allclose(value, tv.detach().numpy(), **TOL)
    g = rng.standard_normal(tv.shape) if reduction == "none" else None
    dx = loss.backward(g)
    tv.backward(torch.ones((), dtype=torch.float64) if g is None else torch.from_numpy(g))
    np.testing.assert_allclose(dx, tx.grad.numpy(), **TOL)


@pytest.mark.parametrize("name", ["ReLU", "LeakyReLU", "ELU", "GELU", "GELU-tanh", "Sigmoid", "Tanh", "Softplus", "SiLU"])
@pytest.mark.parametrize("value", [-1.5, 0.0, 2.0, np.nan, np.inf, -np.inf])
def test_element_wise_layers_on_a_0d_array_match_torch(name, value):
    if name == "ELU" and np.isnan(value):
        pytest.skip("torch's ELU gradient at NaN depends on the tensor's size (dy below 8 elements, "
                    "NaN from its vectorised path); the 4-D NaN cases above hold the vectorised answer")
    _compare(*_run_pair(name, np.array(value), g=np.array(0.7)))


@pytest.mark.parametrize("name", [k for k, spec in LAYERS.items() if spec[3] == "engine"])
def test_one_nan_in_the_gradient_stays_where_torch_puts_it(name):
    x = _input(name, 2, 3)
    ty_shape = _run_pair(name, x)[1][0].shape
    g = np.random.default_rng(1).standard_normal(ty_shape)
    g.reshape(-1)[g.size // 3] = np.nan
    _compare(*_run_pair(name, x, g=g))
