"""Every Tensor op of recorded mode against torch autograd in float64: value and gradients."""
import numpy as np
import pytest

import convgrad as cg
from convgrad import functional as F
from conftest import rel

TOL = 1e-10


def run_both(torch, fn_cg, fn_t, *arrays, positive=False):
    """fn(*tensors) in both libraries; loss = sum(y * g); compare y and every input gradient."""
    rng = np.random.default_rng(7)
    xs = [cg.tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    y, yt = fn_cg(*xs), fn_t(*ts)
    assert y.shape == tuple(yt.shape)
    assert rel(y.data, yt.detach().numpy()) <= TOL
    g = rng.standard_normal(y.shape)
    (y * g).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    for x, t in zip(xs, ts):
        expected = np.zeros(x.shape) if t.grad is None else t.grad.numpy()
        actual = np.zeros(x.shape) if x.grad is None else x.grad
        assert rel(actual, expected) <= TOL


def arr(*shape, seed=0, positive=False):
    a = np.random.default_rng(seed + len(shape)).standard_normal(shape)
    return np.abs(a) + 0.5 if positive else a


BINARY = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
]
SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3)), ((), (2, 2))]


@pytest.mark.parametrize("name,fn", BINARY)
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_binary_broadcasting(torch, name, fn, sa, sb):
    run_both(torch, fn, fn, arr(*sa), arr(*sb, seed=1, positive=True))


@pytest.mark.parametrize("name,fn", BINARY)
def test_binary_with_numbers_and_arrays(torch, name, fn):
    c = arr(4, seed=3, positive=True)
    run_both(torch, lambda a: fn(a, 2.5), lambda a: fn(a, 2.5), arr(3, 4))
    run_both(torch, lambda a: fn(1.5, a), lambda a: fn(1.5, a), arr(3, 4, positive=True))
    run_both(torch, lambda a: fn(c, a), lambda a: fn(torch.tensor(c), a), arr(3, 4, positive=True))


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                                   ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((3, 4), (2, 4, 5))])
def test_matmul(torch, sa, sb):
    run_both(torch, lambda a, b: a @ b, lambda a, b: a @ b, arr(*sa), arr(*sb, seed=1))


UNARY = [
    ("neg", lambda x: -x, False), ("pow2", lambda x: x ** 2, False), ("pow-1.5", lambda x: x ** -1.5, True),
    ("pow0", lambda x: x ** 0, False), ("exp", lambda x: x.exp(), False), ("log", lambda x: x.log(), True),
    ("sqrt", lambda x: x.sqrt(), True), ("abs", lambda x: x.abs(), False),
    ("clamp", lambda x: x.clamp(-0.3, 0.4), False), ("clamp_min", lambda x: x.clamp(min=0.1), False),
    ("relu", lambda x: x.relu(), False), ("sigmoid", lambda x: x.sigmoid(), False),
    ("tanh", lambda x: x.tanh(), False), ("softmax", lambda x: x.softmax(1), False),
    ("log_softmax", lambda x: x.log_softmax(-1), False),
]


@pytest.mark.parametrize("name,fn,positive", UNARY)
def test_unary(torch, name, fn, positive):
    run_both(torch, fn, fn, arr(3, 5, positive=positive))


SHAPE_OPS = [
    ("reshape", lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6)),
    ("reshape-1", lambda x: x.reshape((-1, 3)), lambda x: x.reshape(-1, 3)),
    ("view", lambda x: x.view(2, 12), lambda x: x.view(2, 12)),
    ("flatten", lambda x: x.flatten(), lambda x: x.flatten()),
    ("flatten1", lambda x: x.flatten(1), lambda x: x.flatten(1)),
    ("flatten0-1", lambda x: x.flatten(0, 1), lambda x: x.flatten(0, 1)),
    ("permute", lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1)),
    ("transpose", lambda x: x.transpose(0, -1), lambda x: x.transpose(0, -1)),
    ("T2", lambda x: x[0].T, lambda x: x[0].T),
    ("index", lambda x: x[1], lambda x: x[1]),
    ("slices", lambda x: x[:, 1:, ::2], lambda x: x[:, 1:, ::2]),
    ("ellipsis", lambda x: x[..., -1], lambda x: x[..., -1]),
    ("newaxis", lambda x: x[:, None, 0], lambda x: x[:, None, 0]),
    ("int-array repeats", lambda x: x[np.array([0, 1, 0])], lambda x: x[torch_index([0, 1, 0])]),
    ("bool mask", lambda x: x[x.data > 0], lambda x: x[x > 0]),
]


def torch_index(values):
    import torch
    return torch.tensor(values)


@pytest.mark.parametrize("name,fn,fn_t", SHAPE_OPS)
def test_shape_ops(torch, name, fn, fn_t):
    run_both(torch, fn, fn_t, arr(2, 3, 4))


REDUCTIONS = [
    ("sum", lambda x: x.sum(), lambda x: x.sum()),
    ("sum1", lambda x: x.sum(dim=1), lambda x: x.sum(dim=1)),
    ("sum-1k", lambda x: x.sum(dim=-1, keepdim=True), lambda x: x.sum(dim=-1, keepdim=True)),
    ("sum02", lambda x: x.sum(dim=(0, 2)), lambda x: x.sum(dim=(0, 2))),
    ("mean", lambda x: x.mean(), lambda x: x.mean()),
    ("mean1k", lambda x: x.mean(1, keepdim=True), lambda x: x.mean(1, keepdim=True)),
    ("amax", lambda x: x.amax(), lambda x: x.amax()),
    ("amax0", lambda x: x.amax(dim=0), lambda x: x.amax(dim=0)),
    ("amax12k", lambda x: x.amax(dim=(1, 2), keepdim=True), lambda x: x.amax(dim=(1, 2), keepdim=True)),
    ("max", lambda x: x.max(), lambda x: x.max()),
    ("max1", lambda x: x.max(1)[0], lambda x: x.max(1)[0]),
    ("max-1k", lambda x: x.max(-1, keepdim=True)[0], lambda x: x.max(-1, keepdim=True)[0]),
]


@pytest.mark.parametrize("name,fn,fn_t", REDUCTIONS)
def test_reductions(torch, name, fn, fn_t):
    run_both(torch, fn, fn_t, arr(3, 4, 5))


@pytest.mark.parametrize("name,fn,fn_t", REDUCTIONS[6:])
def test_max_with_ties_as_torch(torch, name, fn, fn_t):
    x = np.array([[[1.0, 3.0], [3.0, 0.0]], [[2.0, 2.0], [-1.0, 2.0]]])
    run_both(torch, fn, fn_t, x)


def test_max_returns_torch_indices(torch):
    x = arr(3, 4)
    values, indices = cg.tensor(x).max(1)
    tv, ti = torch.tensor(x).max(1)
    assert np.array_equal(indices.data, ti.numpy()) and rel(values.data, tv.numpy()) == 0


def test_cat_stack_split_chunk_where(torch):
    a, b, c = arr(2, 3), arr(2, 4, seed=1), arr(2, 3, seed=2)
    run_both(torch, lambda x, y: cg.cat([x, y], dim=1), lambda x, y: torch.cat([x, y], dim=1), a, b)
    run_both(torch, lambda x, y: cg.cat([x, y.data, x], -1), lambda x, y: torch.cat([x, y.detach(), x], -1), a, b)
    run_both(torch, lambda x, y: cg.stack([x, y, x], dim=1), lambda x, y: torch.stack([x, y, x], dim=1), a, c)
    run_both(torch, lambda x: cg.split(x, 2, dim=1)[1] * 2 + cg.split(x, [1, 3], 1)[0],
             lambda x: torch.split(x, 2, dim=1)[1] * 2 + torch.split(x, [1, 3], 1)[0], b)
    run_both(torch, lambda x: cg.chunk(x, 3, dim=1)[0] - cg.chunk(x, 3, dim=1)[1],
             lambda x: torch.chunk(x, 3, dim=1)[0] - torch.chunk(x, 3, dim=1)[1], arr(2, 6))
    assert [p.shape for p in cg.chunk(cg.tensor(arr(5)), 3)] == [tuple(p.shape) for p in torch.chunk(torch.zeros(5), 3)]
    run_both(torch, lambda x, y: cg.where(x > 0, x, y * 2), lambda x, y: torch.where(x > 0, x, y * 2), a, c)
    run_both(torch, lambda x: cg.where(x < 0, 0.0, x), lambda x: torch.where(x < 0, 0.0, x), a)


def test_functional_ops_record_with_tensors(torch):
    tF = torch.nn.functional
    x, w, b = arr(2, 3, 7, 7), arr(4, 3, 3, 3, seed=1), arr(4, seed=2)
    run_both(torch, lambda x, w, b: F.max_pool2d(F.relu(F.conv2d(x, w, b, stride=2, padding=1)), 2, 1),
             lambda x, w, b: tF.max_pool2d(tF.relu(tF.conv2d(x, w, b, stride=2, padding=1)), 2, 1), x, w, b)
    run_both(torch, lambda x: F.avg_pool2d(F.adaptive_avg_pool2d(x, 3), 2, 1),
             lambda x: tF.avg_pool2d(tF.adaptive_avg_pool2d(x, 3), 2, 1), x)
    run_both(torch, lambda x, w, b: F.linear(F.gelu(x), w, b), lambda x, w, b: tF.linear(tF.gelu(x), w, b),
             arr(5, 3), arr(4, 3, seed=1), arr(4, seed=2))
    run_both(torch, lambda x, g, b: F.group_norm(F.batch_norm(x, None, None, g, b, training=True), 2),
             lambda x, g, b: tF.group_norm(tF.batch_norm(x, None, None, g, b, training=True), 2),
             arr(3, 4, 5), arr(4, seed=1), arr(4, seed=2))
    target = np.array([1, 0, 3, 2, 2])
    run_both(torch, lambda x: F.cross_entropy(x, target, label_smoothing=0.1),
             lambda x: tF.cross_entropy(x, torch.tensor(target), label_smoothing=0.1), arr(5, 4))
    run_both(torch, lambda x, w: F.conv_transpose(x, w, stride=2), lambda x, w: tF.conv_transpose2d(x, w, stride=2),
             arr(1, 2, 4, 4), arr(2, 3, 3, 3, seed=1))
    y, idx = F.max_pool2d(cg.tensor(x), 2, return_indices=True)
    _, tidx = tF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    assert np.array_equal(idx.data, tidx.numpy()) and not idx.requires_grad


def test_functional_records_one_node_per_call():
    x = cg.tensor(arr(2, 3, 5, 5), requires_grad=True)
    y = F.conv2d(x, arr(2, 3, 3, 3), stride=2)
    assert y.grad_fn.op == "conv2d" and y.grad_fn.attrs["stride"] == 2 and y.grad_fn.inputs[0] is x
    assert y.grad_fn.inputs[1] is None                  # the weight was a constant array


@pytest.mark.parametrize("name, fn, fn_t", [
    ("max", lambda t: t.max(), lambda t: t.max()),                       # NaN maxima share the gradient
    ("amax", lambda t: t.amax(), lambda t: t.amax()),                    # a NaN maximum: NaN gradient
    ("amax_dim", lambda t: t.amax(1), lambda t: t.amax(1)),
    ("max_dim", lambda t: t.max(1)[0], lambda t: t.max(1)[0]),
    ("abs", lambda t: t.abs(), lambda t: t.abs()),                       # sign(NaN) = 0 in torch's backward
])
def test_nan_in_reductions_and_abs_as_torch(torch, name, fn, fn_t):
    x0 = np.array([[1.0, np.nan, np.nan], [2.0, 2.0, 1.0], [0.0, -0.0, -3.0]])
    x, t = cg.tensor(x0.copy(), requires_grad=True), torch.tensor(x0.copy(), requires_grad=True)
    y, yt = fn(x), fn_t(t)
    g = np.random.default_rng(3).standard_normal(y.shape)
    y.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=TOL, atol=0, equal_nan=True)
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=TOL, atol=0, equal_nan=True)
    assert np.array_equal(np.isnan(x.grad), np.isnan(t.grad.numpy()))


@pytest.mark.parametrize("base", [2.0, 0.5, 1.0, 0.0, -2.0, 3])
def test_number_to_the_power_of_a_tensor_as_torch(torch, base):
    # `2 ** t` was Python's "unsupported operand type(s)"
    x0 = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 2.5, 0.3])
    x, t = cg.tensor(x0.copy(), requires_grad=True), torch.tensor(x0.copy(), requires_grad=True)
    y, yt = base ** x, base ** t
    g = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(g)
    yt.backward(torch.tensor(g))
    assert y.grad_fn.op == "rpow"
    for ours, theirs in ((y.data, yt.detach().numpy()), (x.grad, t.grad.numpy())):
        np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=0, equal_nan=True)
        assert np.array_equal(np.isnan(ours), np.isnan(theirs))


def test_number_to_the_power_of_a_tensor_refuses_what_it_cannot_take():
    x = cg.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match="pow: the base"):
        "2" ** x
    with pytest.raises(TypeError, match="pow: expected a floating-point tensor"):
        2.0 ** cg.tensor(np.arange(3))


def test_tensor_copies_its_data_and_from_numpy_shares_it():
    """convgrad.tensor copies (as torch.tensor): writing into the caller's array between forward
    and backward changes no gradient; convgrad.from_numpy shares it (as torch.from_numpy)."""
    import convgrad as cg
    a = np.array([1.0, -2.0, 3.0])
    w = cg.tensor(np.array([0.5, 0.5, 0.5]), requires_grad=True)
    x = cg.tensor(a)
    (x * w).sum().backward()
    expected = w.grad.copy()
    w.grad = None
    y = (x * w).sum()
    a[...] = 100.0                      # the caller rewrites its array before the backward
    y.backward()
    np.testing.assert_array_equal(w.grad, expected)
    assert not np.shares_memory(x.data, a)
    shared = cg.from_numpy(a)
    assert np.shares_memory(shared.data, a) and shared.dtype == a.dtype
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        cg.from_numpy([1.0])
