"""The Winograd route (2-d, groups 1, 3x3, stride 1) against torch, forced with conv_route:
float64 to 1e-10 (forward, dx, dweight, dbias) over odd and even sizes, paddings 0..3 (also
unequal per axis), batches 0, 1 and more, the batch in chunks, non-contiguous inputs; NaN
and inf where torch puts them; float32 to float32 accuracy; the geometries it refuses; the
choice (inside DataParallel parts). test_conv_oracle's random mix does not draw a 3x3
stride-1 2-d convolution, so this is the route's oracle sweep."""
import numpy as np
import pytest

from conftest import rel_err
from convgrad import gradcheck, nn
from convgrad.functional import conv_route
from convgrad.functional.convolution import budget

torch = pytest.importorskip("torch")
TOL = 1e-10


def _pair(c_in, c_out, padding, bias, dtype=np.float64, seed=0):
    ours = nn.Conv2d(c_in, c_out, 3, padding=padding, bias=bias, generator=seed, dtype=dtype)
    theirs = torch.nn.Conv2d(c_in, c_out, 3, padding=padding, bias=bias,
                             dtype=torch.float64 if dtype == np.float64 else torch.float32)
    theirs.load_state_dict({k: torch.from_numpy(v.data.copy()) for k, v in ours.named_parameters()})
    return ours, theirs


def _run(ours, theirs, x, dy_seed=1, layout=None):
    """y, dx, dw, db of both (ours forced through the Winograd route); x given laid out by `layout`."""
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    with conv_route("winograd"):
        y = ours(x if layout is None else layout(x))
        dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(x.dtype)
        dx = ours.backward(dy if layout is None else layout(dy))
    ty.backward(torch.from_numpy(dy))
    got = {"forward": y, "dx": dx, "dweight": ours.weight.grad}
    want = {"forward": ty.detach().numpy(), "dx": tx.grad.numpy(), "dweight": theirs.weight.grad.numpy()}
    if theirs.bias is not None:
        got["dbias"], want["dbias"] = ours.bias.grad, theirs.bias.grad.numpy()
    return got, want


def _config(seed):
    rng = np.random.default_rng(30_000 + seed)
    padding = (int(rng.integers(0, 4)), int(rng.integers(0, 4))) if seed % 3 else int(rng.integers(0, 3))
    size = tuple(int(s) for s in rng.integers(3, 12, size=2))            # odd and even, down to 3 (one output)
    return dict(c_in=int(rng.integers(1, 6)), c_out=int(rng.integers(1, 6)), padding=padding, size=size,
                batch=int(rng.integers(1, 4)), bias=bool(seed % 4))


def _noncontiguous(a):
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


@pytest.mark.parametrize("seed", range(40))
def test_winograd_route_matches_torch(seed):
    cfg = _config(seed)
    ours, theirs = _pair(cfg["c_in"], cfg["c_out"], cfg["padding"], cfg["bias"], seed=seed)
    x = np.random.default_rng(seed).standard_normal((cfg["batch"], cfg["c_in"], *cfg["size"]))
    got, want = _run(ours, theirs, x, layout=_noncontiguous if seed % 5 == 0 else None)
    assert ours._cache.route == "winograd"
    errors = {k: rel_err(got[k], want[k]) for k in want}
    assert max(errors.values()) < TOL, (cfg, errors)


def test_winograd_sweep_covers_the_cases():
    cfgs = [_config(s) for s in range(40)]
    assert {s % 2 for c in cfgs for s in c["size"]} == {0, 1}
    assert {3} <= {s for c in cfgs for s in c["size"]}
    pads = {p for c in cfgs for p in (c["padding"] if isinstance(c["padding"], tuple) else (c["padding"],))}
    assert pads == {0, 1, 2, 3}
    assert any(isinstance(c["padding"], tuple) and c["padding"][0] != c["padding"][1] for c in cfgs)
    assert {1, 2, 3} <= {c["batch"] for c in cfgs} and {True, False} == {c["bias"] for c in cfgs}


@pytest.mark.parametrize("nbytes", [1, 20_000])
def test_winograd_in_chunks_matches_torch(nbytes):
    """A workspace budget too small for one sample (chunks of one) or for a few."""
    ours, theirs = _pair(5, 3, (1, 2), True)
    x = np.random.default_rng(3).standard_normal((5, 5, 9, 8))
    with budget(nbytes):
        got, want = _run(ours, theirs, x)
    assert ours._cache.route == "winograd"
    errors = {k: rel_err(got[k], want[k]) for k in want}
    assert max(errors.values()) < TOL, errors


def test_winograd_empty_batch_matches_torch():
    """N = 0 (the dispatch takes channel-major for an empty batch): an empty y and dx, zero dw."""
    ours, theirs = _pair(3, 4, 1, True)
    got, want = _run(ours, theirs, np.zeros((0, 3, 6, 5)))
    for k in want:
        assert got[k].shape == want[k].shape
        np.testing.assert_array_equal(got[k], want[k])


def test_winograd_gradcheck():
    layer = nn.Conv2d(2, 3, 3, padding=1, generator=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 4))
    with conv_route("winograd"):
        report = gradcheck(layer, x)
    assert report.passed and len(report.checks) == 3, str(report)     # input, weight, bias


@pytest.mark.parametrize("where", ["input", "grad"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_stay_where_torch_puts_them(value, where):
    """The transforms would spread an inf (inf - inf = NaN): a non-finite result is redone on
    the channel-major route (FINITE_ONLY), so the values match torch's exactly."""
    ours, theirs = _pair(3, 4, 1, True)
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    tx = torch.tensor(x, requires_grad=True)
    if where == "input":
        x[1, 2, 3, 4] = value
        tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    dy = np.random.default_rng(1).standard_normal(tuple(ty.shape))
    if where == "grad":
        dy[0, 1, 2, 3] = value
    with conv_route("winograd"):
        y = ours(x)
        dx = ours.backward(dy)
    ty.backward(torch.from_numpy(dy))
    tol = dict(rtol=1e-10, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), **tol)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), **tol)
    assert not np.isfinite(y).all() if where == "input" else not np.isfinite(dx).all()


@pytest.mark.parametrize("c, side, padding", [(8, 12, 1), (16, 7, 0), (32, 10, 2)])
def test_winograd_float32_matches_torch(c, side, padding):
    """float32 to float32 accuracy (the tolerance of the other float32 layer tests)."""
    ours, theirs = _pair(c, c, padding, True, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((3, c, side, side)).astype(np.float32)
    got, want = _run(ours, theirs, x)
    assert ours._cache.route == "winograd"
    for k in want:
        assert got[k].dtype == np.float32
        np.testing.assert_allclose(got[k], want[k], rtol=2e-4, atol=2e-5 * np.abs(want[k]).max(), err_msg=k)


@pytest.mark.parametrize("kw, shape", [
    (dict(stride=2), (1, 2, 8, 8)), (dict(dilation=2), (1, 2, 8, 8)), (dict(groups=2), (1, 2, 8, 8)),
    (dict(kernel_size=5), (1, 2, 8, 8)), (dict(kernel_size=(3, 1)), (1, 2, 8, 8))])
def test_winograd_refuses_what_it_cannot_compute(kw, shape):
    args = dict(in_channels=2, out_channels=2, kernel_size=3) | kw
    layer = nn.Conv2d(**args, generator=0, dtype=np.float64)
    with conv_route("winograd"), pytest.raises(ValueError, match="forced route 'winograd' cannot compute"):
        layer(np.zeros(shape))
    for n_sp in (1, 3):
        layer = getattr(nn, f"Conv{n_sp}d")(2, 2, 3, generator=0, dtype=np.float64)
        with conv_route("winograd"), pytest.raises(ValueError, match="forced route 'winograd' cannot compute"):
            layer(np.zeros((1, 2) + (6,) * n_sp))


def test_choose_route_takes_winograd_where_it_suits():
    """Inside a DataParallel part (BLAS on one thread) for C_in, C_out >= 32 and outputs >= 14 x 14;
    elsewhere the route it replaces."""
    from convgrad import _threads
    from convgrad.functional.convolution import choose_route, conv_geometry
    big = conv_geometry((2, 32, 14, 15), (32, 32, 3, 3), 1, 1)
    assert choose_route(big).name == "channel-major"
    with _threads.parallel_region():
        assert choose_route(big).name == "winograd"
        for x_shape, w_shape, kw in [((2, 32, 7, 7), (64, 32, 3, 3), dict(padding=1)),       # 7x7 output
                                     ((2, 16, 28, 28), (32, 16, 3, 3), dict(padding=1)),     # C_in 16
                                     ((2, 32, 28, 28), (32, 32, 3, 3), dict(stride=2)),
                                     ((2, 32, 28, 28), (32, 32, 1, 1), {})]:
            assert choose_route(conv_geometry(x_shape, w_shape, **kw)).name != "winograd", (x_shape, w_shape, kw)


def test_data_parallel_conv_on_the_winograd_route_matches_torch():
    """A layer in DataParallel's parts takes the Winograd route by itself (float64 against torch)."""
    pytest.importorskip("threadpoolctl")
    from convgrad.parallel import DataParallel
    ours, theirs = _pair(32, 32, 1, True)
    dp = DataParallel(ours, 2)
    x = np.random.default_rng(0).standard_normal((8, 32, 14, 14))
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    y = dp.forward(x)
    routes = [ours._cache.route] + [r._cache.route for r in dp._replicas]
    assert routes == ["winograd", "winograd"], routes
    dy = np.random.default_rng(1).standard_normal(y.shape)
    dx = dp.backward(dy)
    ty.backward(torch.from_numpy(dy))
    errors = {"forward": rel_err(y, ty.detach().numpy()), "dx": rel_err(dx, tx.grad.numpy()),
              "dweight": rel_err(ours.weight.grad, theirs.weight.grad.numpy()),
              "dbias": rel_err(ours.bias.grad, theirs.bias.grad.numpy())}
    assert max(errors.values()) < TOL, errors


def test_kept_transformed_input_gives_the_same_gradients(monkeypatch):
    """With a kept budget (as `convgrad train` sets) the forward keeps the whole batch's V in the
    layer's workspace for the weight gradient; kept or rebuilt, the numbers are the same as
    torch's, and the count falls back when the layer is freed."""
    import gc

    from convgrad.functional.convolution import set_kept_budget, workspace
    monkeypatch.setitem(workspace._kept, "budget", 0)            # restored after the test
    x = np.random.default_rng(0).standard_normal((3, 4, 9, 8))
    results = []
    for nbytes in (256 * 2**20, 0):
        set_kept_budget(nbytes)
        before = workspace.kept_bytes()
        ours, theirs = _pair(4, 5, 1, True)
        got, want = _run(ours, theirs, x)
        errors = {k: rel_err(got[k], want[k]) for k in want}
        assert max(errors.values()) < TOL, (nbytes, errors)
        kept = ours._workspace.get("wg_v")
        assert (kept is not None) == (nbytes > 0)
        if kept is not None:        # V (4, 4, C_in, N, th, tw + 1) flat, counted while the layer lives
            assert kept.shape == (4 * 4 * 4 * 3 * 5 * 5,) and workspace.kept_bytes() - before == kept.nbytes
        results.append(got)
        del ours, kept
        gc.collect()
        assert workspace.kept_bytes() == before
    for k in results[0]:
        np.testing.assert_array_equal(results[0][k], results[1][k])


@pytest.mark.parametrize("kept_budget,nbytes,cache_chunk", [(0, None, None), (256 * 2**20, None, None),
                                                             (256 * 2**20, None, 1), (0, 30_000, None)])
def test_plain_call_split_over_threads_matches_torch(monkeypatch, kept_budget, nbytes, cache_chunk):
    """Outside DataParallel the batch is split into one part per thread (parts of 4 and 5 samples
    here), BLAS held to one thread: float64 against torch to 1e-10 with V kept per part or rebuilt,
    with parts worked in chunks (of one sample: a workspace budget, or the cache-sized chunk, also
    with V kept chunk by chunk); a second backward of the same forward gives the same."""
    pytest.importorskip("threadpoolctl")
    from convgrad import _threads
    from convgrad.functional.convolution import set_kept_budget, winograd, workspace
    monkeypatch.setitem(workspace._kept, "budget", 0)            # restored after the test
    monkeypatch.setitem(_threads._state, "threads", 2)
    if cache_chunk is not None:
        monkeypatch.setattr(winograd, "CACHE_CHUNK", cache_chunk)
    set_kept_budget(kept_budget)
    ours, theirs = _pair(3, 4, (1, 2), True)
    x = np.random.default_rng(5).standard_normal((9, 3, 10, 7))
    with budget(nbytes or workspace.WORKSPACE_BUDGET):
        tx = torch.tensor(x, requires_grad=True)
        ty = theirs(tx)
        with conv_route("winograd"):
            y = ours(x)
            saved = ours._cache.saved
            dy = np.random.default_rng(1).standard_normal(y.shape)
            dx = ours.backward(dy)
            dw = ours.weight.grad.copy()
            ours.weight.grad = None
            dx2 = ours.backward(dy)                   # V rebuilt from x, split anew
    ty.backward(torch.from_numpy(dy))
    assert (saved is not None) == (kept_budget > 0 and nbytes is None)
    if saved is not None:
        assert saved[0] == [slice(0, 4), slice(4, 9)] and [v.size for v in saved[1]] == [4 * 16 * 3 * 5 * 6, 5 * 16 * 3 * 5 * 6]   # V: 16 C_in th (tw + 1)
    errors = {"forward": rel_err(y, ty.detach().numpy()), "dx": rel_err(dx, tx.grad.numpy()),
              "dweight": rel_err(dw, theirs.weight.grad.numpy()),
              "dbias": rel_err(ours.bias.grad, 2 * theirs.bias.grad.numpy())}
    assert max(errors.values()) < TOL, errors
    np.testing.assert_array_equal(dx2, dx)
    assert rel_err(ours.weight.grad, dw) < TOL


def test_plain_call_keeps_channel_major(monkeypatch):
    """Outside DataParallel the choice stays channel-major even where the batch would split
    (measured slower on a quiet machine, winograd.suits); inside a part it is winograd."""
    from convgrad import _threads
    from convgrad.functional.convolution import choose_route, conv_geometry
    monkeypatch.setitem(_threads._state, "threads", 2)
    geo = conv_geometry((64, 32, 14, 14), (32, 32, 3, 3), 1, 1)
    assert choose_route(geo).name == "channel-major"
    with _threads.parallel_region():
        assert choose_route(geo).name == "winograd"
