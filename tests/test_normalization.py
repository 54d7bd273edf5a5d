"""BatchNorm1d/2d/3d, LayerNorm, GroupNorm: torch oracle in float64, running statistics,
state_dict compatibility, gradcheck, errors."""
import numpy as np
import pytest

from conftest import rel

from convgrad import gradcheck
from convgrad.functional import normalization as F
from convgrad.nn.normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, LayerNorm

TOL = 1e-10


def _copy_params(ours, theirs, torch, rng):
    """Random weights/biases (so affine terms are exercised) set in both modules."""
    for name, p in ours.named_parameters():
        p.data = rng.uniform(0.5, 1.5, p.shape) if name.endswith("weight") else rng.standard_normal(p.shape)
        with torch.no_grad():
            dict(theirs.named_parameters())[name].copy_(torch.from_numpy(p.data))


def _step(ours, theirs, x, g, torch):
    """One forward + backward in both; returns (ours, theirs) tuples of y, dx, grads."""
    ours.zero_grad()
    theirs.zero_grad()
    y = ours(x)
    dx = ours.backward(g)
    xt = torch.from_numpy(x).requires_grad_()
    yt = theirs(xt)
    yt.backward(torch.from_numpy(g))
    grads = {n: p.grad for n, p in ours.named_parameters()}
    t_grads = {n: p.grad.numpy() for n, p in theirs.named_parameters()}
    return (y, dx, grads), (yt.detach().numpy(), xt.grad.numpy(), t_grads)


def _assert_same(ours, theirs, g=None):
    """y, dx and parameter grads equal to TOL. dx is measured against at least 1e-3 |g|: with
    2 values per row (K = 2) the mean and variance paths cancel dx down to rounding noise."""
    (y, dx, grads), (ty, tdx, tgrads) = ours, theirs
    assert rel(y, ty) < TOL
    floor = 0.0 if g is None else 1e-3 * np.abs(g).max()
    assert np.abs(dx - tdx).max() / max(np.abs(tdx).max(), floor) < TOL
    assert grads.keys() == tgrads.keys()
    for name in grads:
        assert rel(grads[name], tgrads[name]) < TOL, name


def _assert_buffers(ours, theirs):
    t_state = theirs.state_dict()
    for name, b in ours.named_buffers():
        assert b.dtype == t_state[name].numpy().dtype, name
        assert rel(b, t_state[name].numpy()) < TOL, name


# ---------------------------------------------------------------------------------------
# BatchNorm vs torch
# ---------------------------------------------------------------------------------------
BN_CONFIGS = [
    # (class, input shape, kwargs)
    ("BatchNorm1d", (5, 4), {}),
    ("BatchNorm1d", (4, 3, 7), {"momentum": 0.3}),
    ("BatchNorm1d", (2, 3), {"momentum": None}),
    ("BatchNorm2d", (3, 4, 5, 6), {}),
    ("BatchNorm2d", (1, 2, 3, 3), {"momentum": None, "eps": 1e-3}),
    ("BatchNorm2d", (4, 3, 2, 5), {"affine": False}),
    ("BatchNorm2d", (3, 2, 4, 4), {"track_running_stats": False}),
    ("BatchNorm2d", (2, 3, 3, 4), {"affine": False, "track_running_stats": False}),
    ("BatchNorm3d", (2, 3, 4, 3, 5), {}),
    ("BatchNorm3d", (3, 2, 2, 3, 2), {"momentum": None, "affine": False}),
]
OURS = {"BatchNorm1d": BatchNorm1d, "BatchNorm2d": BatchNorm2d, "BatchNorm3d": BatchNorm3d}


@pytest.mark.parametrize("cls,shape,kwargs", BN_CONFIGS, ids=[f"{c}-{s}-{k}" for c, s, k in BN_CONFIGS])
def test_batchnorm_matches_torch_train_then_eval(cls, shape, kwargs, torch, rng):
    c = shape[1]
    ours = OURS[cls](c, dtype=np.float64, **kwargs)
    theirs = getattr(torch.nn, cls)(c, **kwargs).double()
    _copy_params(ours, theirs, torch, rng)
    for _ in range(4):   # training steps: batch statistics, running estimates updated
        x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0) + rng.uniform(-2, 2)
        g = rng.standard_normal(shape)
        _assert_same(*_step(ours, theirs, x, g, torch))
        _assert_buffers(ours, theirs)
    ours.eval()
    theirs.eval()
    x, g = rng.standard_normal(shape) + 0.5, rng.standard_normal(shape)
    _assert_same(*_step(ours, theirs, x, g, torch))
    _assert_buffers(ours, theirs)
    if kwargs.get("track_running_stats", True):
        assert int(ours.num_batches_tracked) == 4 and ours.num_batches_tracked.dtype == np.int64
        assert ours.num_batches_tracked.shape == ()


BLOCKING = [  # (_BLOCK, _LONG_ROW): tiny blocks so small inputs take every path of the walk
    (64, 16),    # several samples per block; planes
    (24, 16),    # channel chunks within a sample; planes
    (8, 4),      # one row per block; long rows as (channels, 1) columns
]


@pytest.mark.parametrize("block,long_row", BLOCKING)
@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (7, 5)), ("BatchNorm1d", (5, 4, 3)),
                                       ("BatchNorm2d", (5, 4, 3, 2)), ("BatchNorm3d", (3, 5, 2, 1, 3))])
def test_batchnorm_blocked_walk_matches_torch(cls, shape, block, long_row, torch, rng, monkeypatch):
    monkeypatch.setattr(F, "_BLOCK", block)
    monkeypatch.setattr(F, "_LONG_ROW", long_row)
    ours = OURS[cls](shape[1], dtype=np.float64)
    theirs = getattr(torch.nn, cls)(shape[1]).double()
    _copy_params(ours, theirs, torch, rng)
    for mode in ("train", "train", "eval"):
        ours.train(mode == "train")
        theirs.train(mode == "train")
        _assert_same(*_step(ours, theirs, rng.standard_normal(shape) + 1, rng.standard_normal(shape), torch))
        _assert_buffers(ours, theirs)


@pytest.mark.parametrize("block,long_row", BLOCKING)
def test_row_norms_blocked_walk_match_torch(block, long_row, torch, rng, monkeypatch):
    monkeypatch.setattr(F, "_BLOCK", block)
    monkeypatch.setattr(F, "_LONG_ROW", long_row)
    for ours, theirs, shape in [(LayerNorm((2, 3), dtype=np.float64), torch.nn.LayerNorm((2, 3)), (5, 4, 2, 3)),
                                (GroupNorm(3, 6, dtype=np.float64), torch.nn.GroupNorm(3, 6), (5, 6, 2, 3)),
                                (GroupNorm(2, 4, dtype=np.float64), torch.nn.GroupNorm(2, 4), (3, 4, 7))]:
        theirs = theirs.double()
        _copy_params(ours, theirs, torch, rng)
        g = rng.standard_normal(shape)
        _assert_same(*_step(ours, theirs, rng.standard_normal(shape) - 1, g, torch), g)


def test_momentum_none_is_the_cumulative_average(rng):
    bn = BatchNorm1d(3, momentum=None, dtype=np.float64)
    batches = [rng.standard_normal((6, 3)) * 2 + 1 for _ in range(5)]
    for x in batches:
        bn(x)
    assert np.allclose(bn.running_mean, np.mean([x.mean(0) for x in batches], axis=0), rtol=0, atol=1e-14)
    assert np.allclose(bn.running_var, np.mean([x.var(0, ddof=1) for x in batches], axis=0), rtol=0, atol=1e-14)


def test_functional_batch_norm_matches_torch(torch, rng):
    x = rng.standard_normal((4, 3, 5))
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    rm_t, rv_t = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    for training in (True, False):
        y = F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.2, eps=1e-4)
        yt = torch.nn.functional.batch_norm(torch.from_numpy(x), rm_t, rv_t, torch.from_numpy(w),
                                            torch.from_numpy(b), training=training, momentum=0.2, eps=1e-4)
        assert rel(y, yt.numpy()) < TOL
        assert rel(rm, rm_t.numpy()) < TOL and rel(rv, rv_t.numpy()) < TOL
    y = F.batch_norm(x, None, None, training=True)
    assert rel(y, torch.nn.functional.batch_norm(torch.from_numpy(x), None, None, training=True).numpy()) < TOL


def test_batchnorm_float32_keeps_dtype_and_is_accurate(torch, rng):
    """float32 in, float32 out; statistics of offset data stay accurate (two-pass variance)."""
    x64 = rng.standard_normal((16, 8, 16, 16)) * 0.5 + 30.0
    g64 = rng.standard_normal(x64.shape)
    x, g = x64.astype(np.float32), g64.astype(np.float32)
    bn = BatchNorm2d(8)
    y = bn(x)
    dx = bn.backward(g)
    assert y.dtype == dx.dtype == bn.weight.grad.dtype == bn.running_mean.dtype == np.float32
    ref = BatchNorm2d(8, dtype=np.float64)
    y_ref, dx_ref = ref(x.astype(np.float64)), ref.backward(g.astype(np.float64))
    assert rel(y, y_ref) < 1e-5 and rel(dx, dx_ref) < 1e-5
    assert rel(bn.running_var, ref.running_var) < 1e-5
    assert rel(bn.weight.grad, ref.weight.grad) < 1e-4


def test_batchnorm_1d_accepts_nc_and_ncl_only():
    bn = BatchNorm1d(3)
    assert bn(np.ones((4, 3), np.float32) * np.arange(4, dtype=np.float32)[:, None]).shape == (4, 3)
    assert bn(np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)).shape == (2, 3, 5)
    with pytest.raises(ValueError, match="BatchNorm1d: expected input of shape \\(N, C\\) or \\(N, C, L\\)"):
        bn(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="BatchNorm2d: expected input of shape \\(N, C, H, W\\)"):
        BatchNorm2d(3)(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="BatchNorm3d: expected input with 3 channels"):
        BatchNorm3d(3)(np.zeros((2, 4, 2, 2, 2), np.float32))


def test_batchnorm_one_value_per_channel_is_an_error_in_training_only():
    bn = BatchNorm1d(3)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        bn(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        BatchNorm2d(3)(np.ones((1, 3, 1, 1), np.float32))
    assert int(bn.num_batches_tracked) == 0           # a rejected batch leaves the state alone
    bn.eval()
    assert bn(np.ones((1, 3), np.float32)).shape == (1, 3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(3, track_running_stats=False).eval()(np.ones((1, 3), np.float32))


def test_batchnorm_bad_inputs():
    bn = BatchNorm2d(2)
    with pytest.raises(TypeError, match="dtype float32 or float64"):
        bn(np.ones((2, 2, 3, 3), np.int64))
    with pytest.raises(TypeError, match="input has dtype float64 but weight has dtype float32"):
        bn(np.ones((2, 2, 3, 3)))
    # NaN/inf are values, not errors: they propagate as in torch (tests/test_edge_cases.py)
    with pytest.raises(RuntimeError, match="before forward"):
        BatchNorm2d(2).backward(np.ones((2, 2, 3, 3), np.float32))
    bn.train()(np.random.default_rng(0).standard_normal((2, 2, 3, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="expected grad_output of shape \\(2, 2, 3, 3\\)"):
        bn.backward(np.ones((2, 2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="BatchNorm2d: num_features must be >= 1, got 0"):
        BatchNorm2d(0)


def test_batchnorm_grads_accumulate_over_two_backwards(rng):
    bn = BatchNorm2d(3, dtype=np.float64)
    x, g = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    bn(x)
    bn.backward(g)
    once = bn.weight.grad.copy(), bn.bias.grad.copy()
    bn(x)
    bn.backward(g)
    assert np.allclose(bn.weight.grad, 2 * once[0]) and np.allclose(bn.bias.grad, 2 * once[1])


# ---------------------------------------------------------------------------------------
# state_dict compatibility
# ---------------------------------------------------------------------------------------
STATE_CASES = [
    ("BatchNorm1d", (4,), {}),
    ("BatchNorm2d", (4,), {"affine": False}),
    ("BatchNorm2d", (4,), {"track_running_stats": False}),
    ("BatchNorm3d", (4,), {"affine": False, "track_running_stats": False}),
    ("LayerNorm", ((3, 4),), {}),
    ("LayerNorm", (5,), {"bias": False}),
    ("LayerNorm", (5,), {"elementwise_affine": False}),
    ("GroupNorm", (2, 6), {}),
    ("GroupNorm", (3, 6), {"affine": False}),
]
LAYERS = {**OURS, "LayerNorm": LayerNorm, "GroupNorm": GroupNorm}


@pytest.mark.parametrize("cls,args,kwargs", STATE_CASES, ids=[f"{c}-{a}-{k}" for c, a, k in STATE_CASES])
def test_state_dict_keys_order_and_shapes_match_torch(cls, args, kwargs, torch):
    ours = LAYERS[cls](*args, **kwargs)
    theirs = getattr(torch.nn, cls)(*args, **kwargs)
    assert list(ours.state_dict().keys()) == list(theirs.state_dict().keys())
    assert [v.shape for v in ours.state_dict().values()] == [tuple(v.shape) for v in theirs.state_dict().values()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_loading_a_torch_state_dict_reproduces_torch_eval(torch, rng):
    theirs = torch.nn.BatchNorm2d(5).double()
    _copy_params(BatchNorm2d(5, dtype=np.float64), theirs, torch, rng)
    with torch.no_grad():
        for _ in range(3):
            theirs(torch.from_numpy(rng.standard_normal((4, 5, 3, 3)) * 2 + 1))
    theirs.eval()
    ours = BatchNorm2d(5, dtype=np.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.eval()
    assert int(ours.num_batches_tracked) == 3
    x = rng.standard_normal((2, 5, 4, 4))
    assert rel(ours(x), theirs(torch.from_numpy(x)).detach().numpy()) < TOL


def test_state_dict_of_a_float32_layer_loads_a_float64_torch_state(torch):
    theirs = torch.nn.BatchNorm1d(3)
    ours = BatchNorm1d(3)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.double().state_dict().items()})
    assert ours.running_var.dtype == np.float32 and ours.num_batches_tracked.dtype == np.int64


# ---------------------------------------------------------------------------------------
# LayerNorm and GroupNorm vs torch
# ---------------------------------------------------------------------------------------
def _ln_cases(n=10, seed=7):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        k = int(rng.integers(1, 4))
        norm = tuple(int(s) for s in rng.integers(1, 6, size=k))
        lead = tuple(int(s) for s in rng.integers(1, 4, size=int(rng.integers(0, 3))))
        kwargs = [{}, {"elementwise_affine": False}, {"bias": False}, {"eps": 1e-3}][i % 4]
        if norm == (1,) * k and i % 4 != 3:
            norm = norm[:-1] + (2,)    # a single value per row normalises to exactly 0
        cases.append((lead + norm, norm, kwargs))
    return cases


@pytest.mark.parametrize("shape,norm,kwargs", _ln_cases(), ids=lambda v: str(v))
def test_layernorm_matches_torch(shape, norm, kwargs, torch, rng):
    ours = LayerNorm(norm, dtype=np.float64, **kwargs)
    theirs = torch.nn.LayerNorm(norm, **kwargs).double()
    _copy_params(ours, theirs, torch, rng)
    x, g = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
    _assert_same(*_step(ours, theirs, x, g, torch), g)


def _gn_cases(n=10, seed=8):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        groups = int(rng.integers(1, 4))
        channels = groups * int(rng.integers(1, 4))
        spatial = tuple(int(s) for s in rng.integers(1, 5, size=i % 4))
        shape = (int(rng.integers(1, 4)), channels, *spatial)
        if channels // groups * int(np.prod(spatial)) == 1:
            shape = (shape[0], channels, 2)
        cases.append((shape, groups, [{}, {"affine": False}, {"eps": 1e-2}][i % 3]))
    return cases


@pytest.mark.parametrize("shape,groups,kwargs", _gn_cases(), ids=lambda v: str(v))
def test_groupnorm_matches_torch(shape, groups, kwargs, torch, rng):
    ours = GroupNorm(groups, shape[1], dtype=np.float64, **kwargs)
    theirs = torch.nn.GroupNorm(groups, shape[1], **kwargs).double()
    _copy_params(ours, theirs, torch, rng)
    x, g = rng.standard_normal(shape) * 2 - 1, rng.standard_normal(shape)
    _assert_same(*_step(ours, theirs, x, g, torch), g)


def test_layernorm_and_groupnorm_errors():
    with pytest.raises(ValueError, match="normalized_shape=\\(4,\\) expects input of shape \\(\\*, 4\\)"):
        LayerNorm(4)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="num_channels must be divisible by num_groups"):
        GroupNorm(4, 6)
    with pytest.raises(ValueError, match="GroupNorm: expected input of shape \\(N, 6, \\*spatial\\)"):
        GroupNorm(3, 6)(np.zeros((2, 4, 3), np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        LayerNorm(3).backward(np.zeros((2, 3), np.float32))
    y = LayerNorm(3)(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    assert y.dtype == np.float32


# ---------------------------------------------------------------------------------------
# Numerical gradient checks
# ---------------------------------------------------------------------------------------
GRADCHECK = [
    ("bn1d nc train", lambda: BatchNorm1d(3), (5, 3), True),
    ("bn1d ncl train", lambda: BatchNorm1d(2, momentum=None), (3, 2, 4), True),
    ("bn1d ncl eval", lambda: BatchNorm1d(2), (3, 2, 4), False),
    ("bn2d train", lambda: BatchNorm2d(3), (2, 3, 3, 4), True),
    ("bn2d eval", lambda: BatchNorm2d(3), (2, 3, 3, 4), False),
    ("bn2d no affine", lambda: BatchNorm2d(2, affine=False), (2, 2, 3, 3), True),
    ("bn2d untracked eval", lambda: BatchNorm2d(2, track_running_stats=False), (2, 2, 3, 3), False),
    ("bn3d train", lambda: BatchNorm3d(2), (2, 2, 2, 3, 2), True),
    ("bn3d eval", lambda: BatchNorm3d(2), (2, 2, 2, 3, 2), False),
    ("layernorm", lambda: LayerNorm((3, 4)), (2, 3, 4), True),
    ("layernorm no bias", lambda: LayerNorm(5, bias=False), (3, 5), True),
    ("groupnorm", lambda: GroupNorm(2, 4), (2, 4, 3, 2), True),
    ("groupnorm 1 group no affine", lambda: GroupNorm(1, 3, affine=False), (2, 3, 4), True),
]


@pytest.mark.parametrize("name,make,shape,training", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck(name, make, shape, training):
    rng = np.random.default_rng(3)
    layer = make().train(training)
    for p in layer.parameters():      # non-trivial affine terms
        p.data = rng.uniform(0.5, 1.5, p.shape).astype(p.dtype)
    if getattr(layer, "running_mean", None) is not None:
        layer.running_mean[...] = rng.standard_normal(layer.running_mean.shape)
        layer.running_var[...] = rng.uniform(0.5, 2.0, layer.running_var.shape)
    report = gradcheck(layer, rng.standard_normal(shape) * 1.5 + 0.3)
    assert report.passed, str(report)
    assert report["input"].max_rel_error < 1e-6, str(report)


def test_layer_norm_takes_normalized_shape_as_an_array_as_torch(torch):
    shape = np.array([3, 4])
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    ours, theirs = LayerNorm(shape, dtype=np.float64), torch.nn.LayerNorm(shape).double()
    assert ours.normalized_shape == tuple(theirs.normalized_shape) == (3, 4)
    np.testing.assert_allclose(ours(x), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
