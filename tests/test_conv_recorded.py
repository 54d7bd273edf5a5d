"""The two engine behaviours recorded mode relies on: a frozen weight's gradient is skipped
(conv_backward(..., weight_grad=False)), and a layer called twice before its backward keeps
each call's saved patch matrix (its workspace is not handed to the second forward)."""
import numpy as np
import pytest

from conftest import rel_err
from convgrad import nn
from convgrad.functional import conv_backward, conv_forward

torch = pytest.importorskip("torch")
TOL = 1e-10

# (C_in, C_out, kernel, stride, padding, groups, size): one per route
CASES = {
    "channel-major": (4, 6, 3, 1, 1, 1, (7, 6)),
    "channel-major strided": (4, 6, 3, 2, 1, 2, (9, 8)),
    "per-sample": (1, 5, 3, 1, 0, 1, (8, 7)),
    "per-sample 1x1": (8, 4, 1, 1, 0, 1, (5, 6)),
    "depthwise": (5, 5, 3, 1, 1, 5, (8, 9)),
    "depthwise strided": (5, 5, 3, 2, 1, 5, (9, 9)),
}


def _torch_grads(x, w, b, dy, stride, padding, groups):
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, 1, groups)
    ty.backward(torch.tensor(dy))
    return ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


@pytest.mark.parametrize("case", CASES)
def test_two_forwards_then_two_backwards_match_torch(case):
    c_in, c_out, k, stride, padding, groups, size = CASES[case]
    rng = np.random.default_rng(7)
    w = rng.standard_normal((c_out, c_in // groups, k, k))
    b = rng.standard_normal(c_out)
    x1, x2 = rng.standard_normal((2, c_in, *size)), rng.standard_normal((2, c_in, *size))
    workspace = {}                        # one layer's workspace, shared by both calls
    y1, cache1 = conv_forward(x1, w, b, stride, padding, 1, groups, workspace=workspace)
    y2, cache2 = conv_forward(x2, w, b, stride, padding, 1, groups, workspace=workspace)
    dy1, dy2 = rng.standard_normal(y1.shape), rng.standard_normal(y2.shape)
    got1 = conv_backward(dy1, cache1)     # the first call's backward after the second forward
    got2 = conv_backward(dy2, cache2)
    for (y, got), x, dy in (((y1, got1), x1, dy1), ((y2, got2), x2, dy2)):
        ty, tdx, tdw, tdb = _torch_grads(x, w, b, dy, stride, padding, groups)
        errors = [rel_err(y, ty), rel_err(got[0], tdx), rel_err(got[1], tdw), rel_err(got[2], tdb)]
        assert max(errors) < TOL, (case, errors)


@pytest.mark.parametrize("case", CASES)
def test_module_called_twice_then_backward_of_each_cache(case):
    c_in, c_out, k, stride, padding, groups, size = CASES[case]
    rng = np.random.default_rng(8)
    conv = nn.Conv2d(c_in, c_out, k, stride, padding, groups=groups).to(np.float64)
    x1, x2 = rng.standard_normal((3, c_in, *size)), rng.standard_normal((3, c_in, *size))
    y1 = conv(x1)
    cache1 = conv._cache                  # what a recorded graph node keeps
    y2 = conv(x2)
    cache2 = conv._cache
    dy1, dy2 = rng.standard_normal(y1.shape), rng.standard_normal(y2.shape)
    w, b = conv.weight.data, conv.bias.data
    for y, cache, x, dy in ((y1, cache1, x1, dy1), (y2, cache2, x2, dy2)):
        dx, dw, db = conv_backward(dy, cache)
        ty, tdx, tdw, tdb = _torch_grads(x, w, b, dy, stride, padding, groups)
        errors = [rel_err(y, ty), rel_err(dx, tdx), rel_err(dw, tdw), rel_err(db, tdb)]
        assert max(errors) < TOL, (case, errors)


@pytest.mark.parametrize("case", CASES)
def test_weight_grad_false_skips_dw_and_keeps_dx(case):
    c_in, c_out, k, stride, padding, groups, size = CASES[case]
    rng = np.random.default_rng(9)
    w, b = rng.standard_normal((c_out, c_in // groups, k, k)), rng.standard_normal(c_out)
    x = rng.standard_normal((2, c_in, *size))
    y, cache = conv_forward(x, w, b, stride, padding, 1, groups, workspace={})
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv_backward(dy, cache, weight_grad=False)
    _, tdx, _, tdb = _torch_grads(x, w, b, dy, stride, padding, groups)
    assert dw is None
    assert max(rel_err(dx, tdx), rel_err(db, tdb)) < TOL
    dx2, dw2, _ = conv_backward(dy, cache)          # a second backward still has what dw needs
    _, _, tdw, _ = _torch_grads(x, w, b, dy, stride, padding, groups)
    assert max(rel_err(dx2, tdx), rel_err(dw2, tdw)) < TOL


def test_module_with_frozen_weight_leaves_its_grad_alone():
    rng = np.random.default_rng(10)
    conv = nn.Conv2d(3, 4, 3, padding=1).to(np.float64)
    conv.weight.requires_grad = False              # the attribute Parameter gets in recorded mode
    x = rng.standard_normal((2, 3, 6, 6))
    y = conv(x)
    dy = rng.standard_normal(y.shape)
    dx = conv.backward(dy)
    _, tdx, _, tdb = _torch_grads(x, conv.weight.data, conv.bias.data, dy, 1, 1, 1)
    assert conv.weight.grad is None or not np.any(conv.weight.grad)
    assert max(rel_err(dx, tdx), rel_err(conv.bias.grad, tdb)) < TOL


def test_conv_transpose_skips_what_is_not_needed():
    rng = np.random.default_rng(11)
    layer = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1).to(np.float64)
    theirs = torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1, dtype=torch.float64)
    layer.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((2, 3, 5, 4))
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    y = layer(x)
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    assert layer.backward(dy, input_grad=False) is None
    assert rel_err(layer.weight.grad, theirs.weight.grad.numpy()) < TOL
    layer.zero_grad()
    layer.weight.requires_grad = False
    dx = layer.backward(dy)
    assert layer.weight.grad is None
    assert max(rel_err(dx, tx.grad.numpy()), rel_err(layer.bias.grad, theirs.bias.grad.numpy())) < TOL
