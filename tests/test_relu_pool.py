"""Max pooling with the ReLU in front of it fused in (max_pool_forward(relu=True), used by
Sequential for ReLU -> MaxPool2d(2)): torch as the oracle for values, indices and gradients,
including ties, all-negative windows, NaN, infinite gradients and odd sizes."""
import numpy as np
import pytest

from convgrad import nn
from convgrad.functional import pooling as F

SHAPES = [(2, 3, 8, 8), (3, 2, 7, 9), (1, 4, 2, 3), (2, 1, 11, 11), (0, 2, 4, 4)]
VALUES = ["normal", "integers", "binary", "constant", "negative", "neg_inf"]


def _x(shape, values, seed=0):
    rng = np.random.default_rng(seed)
    return {"normal": lambda: rng.standard_normal(shape),
            "integers": lambda: rng.integers(-2, 3, shape).astype(np.float64),
            "binary": lambda: rng.integers(0, 2, shape).astype(np.float64),
            "constant": lambda: np.full(shape, 0.5),
            "negative": lambda: -rng.random(shape) - 0.1,
            "neg_inf": lambda: np.full(shape, -np.inf)}[values]()


def _torch_pool(x, dy_seed, relu=False, dtype=np.float64):
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    h = torch.relu(tx) if relu else tx
    ty, tidx = torch.nn.functional.max_pool2d(h, 2, return_indices=True)
    dy = np.random.default_rng(dy_seed).standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(dy))
    return ty.detach().numpy(), tidx.numpy(), tx.grad.numpy(), dy


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("shape", SHAPES)
def test_2x2_pooling_matches_torch(shape, values):
    x = _x(shape, values)
    ty, tidx, tdx, dy = _torch_pool(x, 1)
    y, cache = F.max_pool_forward(x, 2)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(F.max_pool_indices(cache), tidx)
    np.testing.assert_array_equal(F.max_pool_backward(dy, cache), tdx)


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_inside_matches_relu_then_pool_in_torch(shape, values):
    x = _x(shape, values, seed=3)
    ty, _, tdx, dy = _torch_pool(x, 2, relu=True)
    y, cache = F.max_pool_forward(x, 2, relu=True)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(F.max_pool_backward(dy, cache), tdx)


@pytest.mark.parametrize("relu", [False, True])
def test_nan_wins_and_passes_its_gradient_through_the_relu(relu):
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 7))
    x[np.random.default_rng(6).random(x.shape) < 0.2] = np.nan
    ty, tidx, tdx, dy = _torch_pool(x, 3, relu=relu)
    y, cache = F.max_pool_forward(x, 2, relu=relu)
    np.testing.assert_array_equal(y, ty)
    if not relu:
        np.testing.assert_array_equal(F.max_pool_indices(cache), tidx)
    np.testing.assert_array_equal(F.max_pool_backward(dy, cache), tdx)


@pytest.mark.parametrize("relu", [False, True])
def test_infinite_gradients_reach_only_the_chosen_element(relu):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(8).standard_normal((1, 2, 6, 6))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(torch.relu(tx) if relu else tx, 2)
    dy = np.ones(tuple(ty.shape))
    dy[0, 0, 0, 0], dy[0, 1, 1, 1], dy[0, 1, 2, 0] = np.inf, -np.inf, np.nan
    ty.backward(torch.tensor(dy))
    _, cache = F.max_pool_forward(x, 2, relu=relu)
    np.testing.assert_array_equal(F.max_pool_backward(dy, cache), tx.grad.numpy())


def test_float32_stays_float32_and_matches_torch():
    x = np.random.default_rng(9).standard_normal((4, 3, 10, 10)).astype(np.float32)
    ty, _, tdx, dy = _torch_pool(x, 4, relu=True, dtype=np.float32)
    y, cache = F.max_pool_forward(x, 2, relu=True)
    dx = F.max_pool_backward(dy, cache)
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(dx, tdx)


def test_workspace_reuse_and_a_second_backward():
    ws = {}
    x1, x2 = (np.random.default_rng(s).standard_normal((2, 2, 6, 6)) for s in (10, 11))
    _, c1 = F.max_pool_forward(x1, 2, workspace=ws)
    y2, c2 = F.max_pool_forward(x2, 2, workspace=ws)
    dy = np.ones_like(y2)
    first = F.max_pool_backward(dy, c2)
    np.testing.assert_array_equal(F.max_pool_backward(dy, c2), first)   # backward twice: same result
    _, fresh = F.max_pool_forward(x2, 2)
    np.testing.assert_array_equal(first, F.max_pool_backward(dy, fresh))


# ---------------------------------------------------------------------------------------
# Sequential: ReLU -> MaxPool2d(2) runs as one step
# ---------------------------------------------------------------------------------------
def _net(pool, act=nn.ReLU):
    net = nn.Sequential(nn.Conv2d(2, 3, 3, generator=0), act(), pool, nn.Flatten(), nn.Linear(3 * 3 * 3, 4, generator=1))
    return net.to(np.float64)


def _one_by_one(net, x, dy):
    """Each child's own forward and backward, no fusion."""
    h = x
    for m in net:
        h = m(h)
    y = h
    g = dy
    for m in reversed(list(net)):
        g = m.backward(g)
    return y, g


@pytest.mark.parametrize("values", ["normal", "negative", "integers"])
def test_sequential_fuses_relu_into_the_pool_with_identical_results(values):
    x = _x((3, 2, 8, 8), values, seed=12)
    net, twin = _net(nn.MaxPool2d(2)), _net(nn.MaxPool2d(2))
    assert net[2].fuses_relu()
    dy = np.random.default_rng(13).standard_normal((3, 4))
    y = net(x)
    assert net._steps == [net[0], net[2], net[3], net[4]]             # the ReLU ran inside the pool
    dx = net.backward(dy)
    ty, tdx = _one_by_one(twin, x, dy)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(dx, tdx)
    for (name, p), (_, q) in zip(net.named_parameters(), twin.named_parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)


def test_sequential_matches_torch_with_the_fusion():
    torch = pytest.importorskip("torch")
    net = _net(nn.MaxPool2d(2))
    tnet = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(27, 4)).double()
    tnet.load_state_dict({k: torch.tensor(v) for k, v in net.state_dict().items()})
    x = np.random.default_rng(14).standard_normal((3, 2, 8, 8))
    dy = np.random.default_rng(15).standard_normal((3, 4))
    tx = torch.tensor(x, requires_grad=True)
    ty = tnet(tx)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(net(x), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.backward(dy), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    for name, p in net.named_parameters():
        np.testing.assert_allclose(p.grad, dict(tnet.named_parameters())[name].grad.numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=name)


class _MyReLU(nn.ReLU):
    def forward(self, x):
        return super().forward(x) * 2.0


@pytest.mark.parametrize("pool,act,fused", [
    (nn.MaxPool2d(2), nn.ReLU, True),
    (nn.MaxPool2d(2, 2, 0, 1), nn.ReLU, True),
    (nn.MaxPool2d(2, return_indices=True), nn.ReLU, False),
    (nn.MaxPool2d(2, ceil_mode=True), nn.ReLU, False),
    (nn.MaxPool2d(3, 2), nn.ReLU, False),
    (nn.MaxPool2d(2, padding=1), nn.ReLU, False),
    (nn.MaxPool2d(2), nn.LeakyReLU, False),
    (nn.MaxPool2d(2), _MyReLU, False),
])
def test_only_plain_relu_and_plain_2x2_pooling_fuse(pool, act, fused):
    net = nn.Sequential(act(), pool)
    assert pool.fuses_relu() == (fused or act is not nn.ReLU and pool.fuses_relu())
    net(np.random.default_rng(16).standard_normal((1, 1, 6, 6)))
    assert (len(net._steps) == 1) == fused


def test_maxpool_absorbs_exactly_a_plain_relu_before_a_fusable_pool():
    """MaxPool2d.absorbs is the fusion rule Sequential can ask without importing layer classes."""
    from convgrad import nn
    pool = nn.MaxPool2d(2)
    assert pool.absorbs(nn.ReLU())
    assert not pool.absorbs(nn.LeakyReLU())
    assert not nn.MaxPool2d(3).absorbs(nn.ReLU())
    assert not nn.MaxPool2d(2, return_indices=True).absorbs(nn.ReLU())
    assert not nn.MaxPool1d(2).absorbs(nn.ReLU())
