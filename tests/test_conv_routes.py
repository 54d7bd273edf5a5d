"""The lectures' routes, the reference loops and the fast path give the same numbers;
the worked example of ../shared/seeds/README.md as a golden test."""
import numpy as np
import pytest

from conftest import rel_err
from convgrad import functional as F
from convgrad import reference as ref
from convgrad.functional import convolution as C

from conftest import DJ_DV, DJ_DW, DJ_DX, V, W, X  # the lectures' worked example


def test_worked_example_forward_every_route():
    assert np.array_equal(F.conv2d(X[None, None], W[None, None])[0, 0], V)
    assert np.array_equal(ref.conv_loops(X[None, None], W[None, None])[0, 0], V)


def test_worked_example_gradients_every_route():
    x, w, g = X[None, None], W[None, None], DJ_DV[None, None]
    _, cache = F.conv_forward(x, w)
    dx, dw, _ = F.conv_backward(g, cache)
    assert np.array_equal(dx[0, 0], DJ_DX) and np.array_equal(dw[0, 0], DJ_DW)
    assert np.array_equal(C.conv_input_grad_by_conv(g, w, x.shape)[0, 0], DJ_DX)
    assert np.array_equal(C.conv_weight_grad_by_conv(x, g, w.shape)[0, 0], DJ_DW)
    assert np.array_equal(ref.chain_rule_dx(ref.jacobian_dv_dx(X, W), DJ_DV), DJ_DX)
    assert np.array_equal(ref.chain_rule_dw(ref.jacobian_dv_dw(X, W), DJ_DV), DJ_DW)
    # the shortcut dJ/dx = conv(pad(dJ/dv, f-1), rot180(w)), spelt out
    padded = np.pad(DJ_DV, 1)
    assert np.array_equal(F.conv2d(padded[None, None], W[::-1, ::-1][None, None].copy())[0, 0], DJ_DX)
    # and dJ/dw = conv(x, dJ/dv)
    assert np.array_equal(F.conv2d(x, g)[0, 0], DJ_DW)


def test_jacobian_shapes_and_entries():
    jx, jw = ref.jacobian_dv_dx(X, W), ref.jacobian_dv_dw(X, W)
    assert jx.shape == (3, 3, 2, 2) and jw.shape == (2, 2, 2, 2)
    # dv[0,1]/dx[1,2] = w[1,1]; dv[1,0]/dw[0,1] = x[1,1]
    assert jx[1, 2, 0, 1] == W[1, 1] and jw[0, 1, 1, 0] == X[1, 1]


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_jacobians_with_stride_match_fast_path(stride, rng):
    x, w = rng.standard_normal((7, 8)), rng.standard_normal((3, 3))
    v = F.conv2d(x[None, None], w[None, None], stride=stride)[0, 0]
    g = rng.standard_normal(v.shape)
    _, cache = F.conv_forward(x[None, None], w[None, None], stride=stride)
    dx, dw, _ = F.conv_backward(g[None, None], cache)
    assert rel_err(ref.chain_rule_dx(ref.jacobian_dv_dx(x, w, stride), g), dx[0, 0]) < 1e-12
    assert rel_err(ref.chain_rule_dw(ref.jacobian_dv_dw(x, w, stride), g), dw[0, 0]) < 1e-12
    # v itself is the Jacobian contracted with x (the map is linear in x)
    assert rel_err(np.tensordot(x, ref.jacobian_dv_dx(x, w, stride), axes=([0, 1], [0, 1])), v) < 1e-12


def _random_geometry(seed):
    rng = np.random.default_rng(seed)
    n_sp = 1 + seed % 3
    groups = int(rng.choice([1, 2]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=n_sp))
    stride = tuple(int(s) for s in rng.integers(1, 4, size=n_sp))
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=n_sp))
    padding = tuple(int(p) for p in rng.integers(0, 3, size=n_sp))
    size = tuple(int(d * (k - 1) + 1 + rng.integers(0, 5)) for k, d in zip(kernel, dilation))
    x = rng.standard_normal((2, c_in, *size))
    w = rng.standard_normal((c_out, c_in // groups, *kernel))
    b = rng.standard_normal(c_out)
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups), rng


@pytest.mark.parametrize("seed", range(40))
def test_reference_loops_equal_fast_path(seed):
    x, w, b, kw, rng = _random_geometry(seed)
    y, cache = F.conv_forward(x, w, b, **kw)
    assert rel_err(ref.conv_loops(x, w, b, **kw), y) < 1e-12
    dy = rng.standard_normal(y.shape)
    dx, dw, db = F.conv_backward(dy, cache)
    rdx, rdw, rdb = ref.conv_loops_backward(dy, x, w, **kw)
    assert rel_err(rdx, dx) < 1e-12 and rel_err(rdw, dw) < 1e-12 and rel_err(rdb, db) < 1e-12


@pytest.mark.parametrize("seed", range(60))
def test_lecture_routes_equal_fast_path(seed):
    """dx by flip/pad/dilate + conv_general, dw by conv(x, dy), both equal col2im / dY @ cols^T."""
    x, w, _, kw, rng = _random_geometry(seed)
    y, cache = F.conv_forward(x, w, None, **kw)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = F.conv_backward(dy, cache)
    args = (kw["stride"], kw["padding"], kw["dilation"], kw["groups"])
    assert rel_err(C.conv_input_grad_by_conv(dy, w, x.shape, *args), dx) < 1e-12
    assert rel_err(C.conv_weight_grad_by_conv(x, dy, w.shape, *args), dw) < 1e-12
    assert rel_err(F.conv_input_grad(dy, w, x.shape, *args), dx) < 1e-12
    assert rel_err(F.conv_weight_grad(x, dy, w.shape, *args), dw) < 1e-12


def test_conv_transpose_is_the_input_gradient(rng):
    x = rng.standard_normal((2, 3, 5, 6))
    w = rng.standard_normal((3, 4, 3, 3))        # (C_in of the transpose, C_out)
    y = F.conv_transpose(x, w, stride=2, padding=1, output_padding=1)
    assert rel_err(F.conv_input_grad(x, w, y.shape, stride=2, padding=1), y) < 1e-12


def test_conv_general_lhs_dilation_is_zero_insertion(rng):
    x, w = rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((3, 2, 2, 2))
    dilated = np.zeros((1, 2, 7, 9))
    dilated[:, :, ::2, ::2] = x
    assert rel_err(C.conv_general(x, w, lhs_dilation=2, padding=1), F.conv2d(dilated, w, padding=1)) < 1e-12


def test_flip_swap_is_rot180_with_channels_swapped(rng):
    w = rng.standard_normal((4, 3, 2, 3))
    assert np.array_equal(C.flip_swap(w, 1), np.transpose(w[:, :, ::-1, ::-1], (1, 0, 2, 3)))


@pytest.mark.parametrize("c_in, c_out, route", [
    (8, 5, "channel-major"),     # C_out <= C_in: dx as the lectures' full convolution
    (8, 12, "channel-major"),    # dx by col2im, its dcols written over the kept patch matrix
    (2, 5, "per-sample"),        # 2 x 3 x 3 taps: a short patch
])
def test_kept_patch_matrices_stay_within_the_process_budget(rng, monkeypatch, c_in, c_out, route):
    """A layer keeps its whole-batch patch matrix for the backward only while all kept ones fit
    the kept budget (default 0: none); kept or rebuilt, the gradients are the same (a second
    backward, after the kept matrix was consumed, rebuilds it from x), and the count falls
    back when the layers are freed."""
    import gc

    from convgrad import nn
    from convgrad.functional.convolution import workspace
    x = rng.standard_normal((4, c_in, 10, 10))
    dy = rng.standard_normal((4, c_out, 10, 10))
    results = []
    assert C.kept_budget() == 0
    monkeypatch.setitem(workspace._kept, "budget", 0)            # restored after the test
    for budget in (256 * 2**20, 0):
        C.set_kept_budget(budget)
        before = workspace.kept_bytes()
        conv = nn.Conv2d(c_in, c_out, 3, padding=1, generator=0).to(np.float64)
        y = conv(x)
        assert conv._cache.route == route
        kept = conv._cache.saved is not None
        assert kept == (budget > 0)
        assert workspace.kept_bytes() - before == (c_in * 9 * 4 * 100 * 8 if kept else 0)
        cache = conv._cache
        dx, dw, db = F.conv_backward(dy, cache)
        dx_again, dw_again, _ = F.conv_backward(dy, cache)          # nothing saved any more: from x
        np.testing.assert_array_equal(dx, dx_again)
        np.testing.assert_array_equal(dw, dw_again)
        results.append((y, dx, dw, db))
        del conv, y, cache
        gc.collect()
        assert workspace.kept_bytes() == before
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
